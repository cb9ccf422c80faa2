"""`maxwell doctor` lines for the physics: which energy and temperature source would be
used here and why each better one is not. Probes like `probe()` does (read-only) and
closes what it opened."""

from __future__ import annotations

from maxwell.common import Check
from maxwell.physics._records import Roots
from maxwell.physics._sensors import _PlausibleTemp, energy_readers, source_label, temp_readers


def doctor_checks(roots: Roots | None = None, hw_class: str = "desktop") -> list[Check]:
    """One line per measured source (✓ usable / ✗ why not, with the fix), then the choice."""
    roots = roots if roots is not None else Roots.from_env()
    checks: list[Check] = []
    for quantity, readers in (
        ("energy", list(energy_readers(roots))),
        ("temperature", [_PlausibleTemp(r) for r in temp_readers(roots)]),
    ):
        chosen = ""
        for reader in readers:
            ok = reader.available()
            label = source_label(reader.reader if isinstance(reader, _PlausibleTemp) else reader)
            checks.append(Check(f"{quantity}: {reader.name}", ok.ok, ok.reason))
            if ok and not chosen:
                chosen = label
            reader.close()
        if chosen:
            checks.append(Check(f"{quantity} source", True, f"{chosen} (measured)"))
        else:
            checks.append(
                Check(
                    f"{quantity} source",
                    True,
                    f"model (modelled: virtual plant, {hw_class} class; no measured source here)",
                )
            )
    return checks
