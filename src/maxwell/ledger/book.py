"""The double-entry ledger: accounts in integer micro-credits, every movement a transfer.

One credit is 1 000 000 micro-credits (µcr); balances are int64 so sums are exact and
the total of all accounts is checked for equality, not closeness. A transfer moves a
non-negative amount from one account to another with a reason and a tick. No account
goes below zero: a charge larger than the balance takes what is there and reports the
rest as unpaid, and the caller decides what that means (bankruptcy for an agent, a
short bounty for the pool).

Pure bookkeeping over numpy arrays: no I/O, no clock, no randomness. A `Ledger`
object is mutable for speed inside one step; `copy()` gives the step its own copy so
the caller's state is never changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

UCR_PER_CREDIT = 1_000_000
REASONS = ("rent", "landauer_tax", "bounty", "fine", "grant")
# Keep every amount well inside int64 so sums over many accounts cannot overflow.
MAX_AMOUNT_UCR = 2**62


class ConservationError(RuntimeError):
    """The total of all accounts changed: a bug, never a state to continue from."""


class Transfer(NamedTuple):
    """One movement of `amount_ucr` micro-credits from `src` to `dst` at `tick`."""

    tick: int
    src: str
    dst: str
    amount_ucr: int
    reason: str

    @property
    def amount(self) -> float:
        """The amount in credits."""
        return self.amount_ucr / UCR_PER_CREDIT


def to_ucr(credits: float | npt.ArrayLike) -> IntArray:
    """Credits → micro-credits, rounded to the nearest (half to even), as int64."""
    x = np.asarray(credits, dtype=np.float64) * UCR_PER_CREDIT
    if not np.all(np.isfinite(x)) or np.any(np.abs(x) > MAX_AMOUNT_UCR):
        raise ValueError("amount is not finite or too large for the ledger (|x| > 2^62 µcr)")
    return np.rint(x).astype(np.int64)


def to_credits(ucr: int | npt.ArrayLike) -> FloatArray:
    """Micro-credits → credits (float64)."""
    return np.asarray(ucr, dtype=np.float64) / UCR_PER_CREDIT


class Ledger:
    """Named accounts with int64 micro-credit balances and a journal of transfers."""

    def __init__(self, accounts: Sequence[str], balances_ucr: npt.ArrayLike | None = None) -> None:
        names = tuple(accounts)
        if len(set(names)) != len(names):
            raise ValueError("account names must be unique")
        if balances_ucr is None:
            bal = np.zeros(len(names), dtype=np.int64)
        else:
            bal = np.array(balances_ucr, dtype=np.int64)
        if bal.shape != (len(names),):
            raise ValueError(f"balances_ucr has shape {bal.shape}, expected ({len(names)},)")
        if np.any(bal < 0):
            raise ValueError("balances must be >= 0")
        self._setup(names, bal)

    def _setup(self, names: tuple[str, ...], bal: IntArray) -> None:
        self.accounts = names
        self._index: dict[str, int] | None = None  # built on first use (10⁵ names cost)
        self._bal = bal
        self.total_ucr = int(bal.sum())
        self._batches: list[_Batch] = []

    @classmethod
    def of(cls, accounts: tuple[str, ...], balances_ucr: IntArray) -> Ledger:
        """A ledger over accounts already known to be unique (e.g. `EconomyParams.accounts`)
        and balances known to be non-negative int64: skips the checks that cost O(n) with
        hashing, for a step over 10⁵ agents. The balances are copied."""
        led = cls.__new__(cls)
        led._setup(accounts, np.array(balances_ucr, dtype=np.int64))
        return led

    def copy(self) -> Ledger:
        """An independent ledger with the same balances and an empty journal."""
        return Ledger.of(self.accounts, self._bal)

    def index(self, name: str) -> int:
        """Position of an account by name."""
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self.accounts)}
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no account named {name!r}") from None

    @property
    def journal(self) -> Transfers:
        """The transfers booked since the last drain (a lazy sequence of `Transfer`)."""
        return Transfers(self.accounts, tuple(self._batches))

    @property
    def balances_ucr(self) -> IntArray:
        """A copy of all balances, in account order."""
        return self._bal.copy()

    @property
    def balances_view(self) -> IntArray:
        """All balances as a read-only view (no copy: for reading 10⁵ of them a tick)."""
        v = self._bal.view()
        v.flags.writeable = False
        return v

    def balance_ucr(self, account: int) -> int:
        """One account's balance."""
        return int(self._bal[account])

    def check(self) -> None:
        """Raise ConservationError if the total moved or any balance is negative."""
        total = int(self._bal.sum())
        if total != self.total_ucr:
            raise ConservationError(
                f"ledger total changed: {total} µcr, expected {self.total_ucr} µcr"
            )
        if np.any(self._bal < 0):
            raise ConservationError("an account went below zero")

    @staticmethod
    def _check_reason(reason: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown transfer reason {reason!r}; expected one of {REASONS}")

    def _batch(
        self,
        reason: str,
        accounts: npt.ArrayLike,
        counterpart: int,
        amounts_ucr: npt.ArrayLike,
        accounts_name: str,
        not_distinct: str,
    ) -> tuple[IntArray, IntArray]:
        """Validate a batch move between `counterpart` and each of `accounts`, before
        anything moves; returns (accounts, amounts) as int64 arrays."""
        self._check_reason(reason)
        acc = np.asarray(accounts, dtype=np.int64)
        a = np.asarray(amounts_ucr, dtype=np.int64)
        if acc.shape != a.shape or acc.ndim != 1:
            raise ValueError(f"{accounts_name} and amounts_ucr must be 1-d arrays of equal length")
        if np.any(a < 0) or np.any(a > MAX_AMOUNT_UCR):
            raise ValueError("amounts must be in [0, 2^62] µcr")
        # Sorted and strictly increasing (how the economy passes them) proves it in O(n).
        if acc.size > 1 and not bool(np.all(acc[1:] > acc[:-1])) \
                and np.unique(acc).size != acc.size:
            raise ValueError(not_distinct)
        if np.any(acc == counterpart):
            raise ValueError("an account cannot pay itself")
        return acc, a

    def charge(
        self, src: int, dst: int, amount_ucr: int, reason: str, tick: int
    ) -> tuple[int, int]:
        """Move up to `amount_ucr` from src to dst; returns (paid, unpaid)."""
        srcs = np.array([src], dtype=np.int64)
        amounts = np.array([amount_ucr], dtype=np.int64)
        paid, unpaid = self.charge_many(srcs, dst, amounts, reason, tick)
        return int(paid[0]), int(unpaid[0])

    def charge_many(
        self, srcs: npt.ArrayLike, dst: int, amounts_ucr: npt.ArrayLike, reason: str, tick: int
    ) -> tuple[IntArray, IntArray]:
        """Charge each of the distinct accounts `srcs` its amount, paid into `dst`.

        Each pays min(amount, balance). Returns (paid, unpaid) aligned with `srcs`.
        """
        s, a = self._batch(
            reason, srcs, dst, amounts_ucr, "srcs", "charge_many needs distinct source accounts"
        )
        paid = np.minimum(a, self._bal[s])
        self._bal[s] -= paid
        self._bal[dst] += int(paid.sum())
        moved = paid > 0
        if moved.any():
            self._batches.append(_Batch(tick, reason, s[moved], np.full(int(moved.sum()), dst),
                                        paid[moved]))
        return paid, a - paid

    def pay_many(
        self, src: int, dsts: npt.ArrayLike, amounts_ucr: npt.ArrayLike, reason: str, tick: int
    ) -> tuple[IntArray, IntArray]:
        """Pay each of the distinct accounts `dsts` its amount out of `src`.

        If `src` holds less than the total, every payee gets the same fraction
        (rounded down to a micro-credit; the remainder stays in `src`), so no account
        is preferred by its position. Returns (paid, unpaid) aligned with `dsts`.
        """
        d, a = self._batch(
            reason, dsts, src, amounts_ucr, "dsts", "pay_many needs distinct destination accounts"
        )
        total = int(a.sum())
        available = int(self._bal[src])
        if total <= available:
            paid = a.copy()
        else:
            # Exact integer pro rata: floor(a_i · available / total) ≤ a_i, Σ ≤ available.
            paid = np.array(
                [(int(x) * available) // total for x in a], dtype=np.int64
            )
        self._bal[src] -= int(paid.sum())
        self._bal[d] += paid  # destinations are distinct
        moved = paid > 0
        if moved.any():
            self._batches.append(_Batch(tick, reason, np.full(int(moved.sum()), src), d[moved],
                                        paid[moved]))
        return paid, a - paid

    def transfer(self, src: int, dst: int, amount_ucr: int, reason: str, tick: int) -> Transfer:
        """Move exactly `amount_ucr`; raises ValueError if src holds less (nothing moves)."""
        if amount_ucr > self._bal[src]:
            raise ValueError(
                f"{self.accounts[src]} holds {int(self._bal[src])} µcr, cannot pay {amount_ucr}"
            )
        self.charge(src, dst, amount_ucr, reason, tick)
        return Transfer(tick, self.accounts[src], self.accounts[dst], int(amount_ucr), reason)

    def drain(self) -> Transfers:
        """The journal so far, emptied."""
        out = self.journal
        self._batches = []
        return out


class _Batch(NamedTuple):
    """One batch move as columns: account indexes, amounts (µcr), one reason and tick."""

    tick: int
    reason: str
    src: IntArray
    dst: IntArray
    amount_ucr: IntArray


class Transfers(Sequence[Transfer]):
    """Transfers kept as columns, materialized as `Transfer` tuples only when read.

    A step over 10⁵ agents books 10⁵ bounties; building a tuple for each costs more
    than the step itself, and a caller that records nothing never pays it. Behaves
    as a read-only sequence (len, index, iterate, compare with a tuple of Transfer).
    """

    __slots__ = ("_accounts", "_batches", "_items")

    def __init__(self, accounts: tuple[str, ...], batches: tuple[_Batch, ...] = ()) -> None:
        self._accounts = accounts
        self._batches = batches
        self._items: tuple[Transfer, ...] | None = None

    def _all(self) -> tuple[Transfer, ...]:
        if self._items is None:
            acc = self._accounts
            self._items = tuple(
                Transfer(b.tick, acc[s], acc[d], a, b.reason)
                for b in self._batches
                for s, d, a in zip(b.src.tolist(), b.dst.tolist(), b.amount_ucr.tolist(),
                                   strict=True)
            )
        return self._items

    def __len__(self) -> int:
        return sum(int(b.amount_ucr.size) for b in self._batches)

    @overload
    def __getitem__(self, i: int) -> Transfer: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Transfer, ...]: ...
    def __getitem__(self, i: int | slice) -> Transfer | tuple[Transfer, ...]:
        return self._all()[i]

    def __iter__(self) -> Iterator[Transfer]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Transfers):
            return self._all() == other._all()
        if isinstance(other, tuple | list):
            return list(self._all()) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"Transfers({list(self._all())!r})"

    def total_ucr(self, reason: str | None = None) -> int:
        """Sum of the amounts (of one reason), without materializing anything."""
        return sum(int(b.amount_ucr.sum()) for b in self._batches
                   if reason is None or b.reason == reason)
