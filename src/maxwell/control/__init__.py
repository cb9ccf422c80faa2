"""Control: the temperature → reserve-price PID and its per-machine calibration.

The reserve price of one core-second is r = clamp(PID(T − T_set), r_min, r_max)
(`pid_step`, pure and vectorized over hosts; `PID` is a scalar wrapper). Gains come
from identifying the machine's plant, busy cores → die temperature, as first order
plus dead time (`tuning.fit_fopdt`) and applying SIMC (`tuning.simc_gains`); the
result is stored as a profile (`load_profile`, `save_profile`) bound to the machine
it was measured on. `default_gains(hw_class)` applies the same procedure to a
hardware class's model plant when no profile exists. This package reads
/proc/cpuinfo and the profile file; it writes only the profile.
"""

from maxwell.control.defaults import default_gains, default_limits
from maxwell.control.pid import (
    PID,
    PIDGains,
    PIDLimits,
    PIDOutput,
    PIDState,
    last_output,
    pid_step,
    retune,
)
from maxwell.control.profile import (
    GainChoice,
    Machine,
    Profile,
    ProfileError,
    ProfileMismatch,
    choose_gains,
    current_machine,
    default_profile_path,
    gains_record,
    load_profile,
    resolve_gains,
    save_profile,
)

__all__ = [
    "PID",
    "GainChoice",
    "Machine",
    "PIDGains",
    "PIDLimits",
    "PIDOutput",
    "PIDState",
    "Profile",
    "ProfileError",
    "ProfileMismatch",
    "choose_gains",
    "current_machine",
    "default_gains",
    "default_limits",
    "default_profile_path",
    "gains_record",
    "last_output",
    "load_profile",
    "pid_step",
    "resolve_gains",
    "retune",
    "save_profile",
]
