"""Time to accuracy: each framework's fastest setting at batch 32 trained to 0.85 and 0.88 test accuracy.

Each in a fresh process (PyTorch's compile cache off, so its compilation is paid as a new user
pays it), from the same weights on the same batches, an epoch of each in turn, the test accuracy
evaluated after every epoch. The clock counts training only: building the model and its step,
compiling, and every epoch; loading the data and evaluating are left out.
"""

from typing import Callable, List, Sequence

from bench.peer_process import PeerFailed, close, start
from bench.peer_settings import THRESHOLDS, PeerSetting, environment_at, resolved


def time_to_accuracy(settings: Sequence[PeerSetting], weights: list, epochs: int,
                     say: Callable[[str], None]) -> List[dict]:
    """Each of `settings` (one per framework) trained from `weights` at batch 32 in a fresh process
    (torch's compile cache off), an epoch each in turn, evaluated after each (module docstring)."""
    workers, skipped = start(settings, {"TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"},
                             environment_of=lambda setting: environment_at(setting, 32))
    rows = {setting.name: {"setting": setting.name, "framework": setting.framework, "epochs": [],
                           "reached": {}, "error": skipped.get(setting.name)} for setting in settings}
    clock = {}
    for setting in settings:
        if setting.name in workers:
            try:
                clock[setting.name] = workers[setting.name].ask("build", setting=resolved(setting, 32), batch_size=32,
                                                                weights=weights)["seconds"]
            except PeerFailed as failure:
                rows[setting.name]["error"] = str(failure).splitlines()[-1]
    for epoch in range(1, epochs + 1):
        for name in [name for name in clock if len(rows[name]["reached"]) < len(THRESHOLDS)]:
            try:
                trained = workers[name].ask("train", epoch=epoch, steps=0)
                accuracy = workers[name].ask("evaluate")["accuracy"]
            except PeerFailed as failure:
                rows[name]["error"] = str(failure).splitlines()[-1]
                del clock[name]
                continue
            clock[name] += trained["seconds"]
            rows[name]["epochs"].append({"epoch": epoch, "seconds": clock[name], "test_accuracy": accuracy})
            for threshold in THRESHOLDS:
                if accuracy >= threshold and str(threshold) not in rows[name]["reached"]:
                    rows[name]["reached"][str(threshold)] = {"epoch": epoch, "seconds": clock[name]}
    close(workers)
    for row in rows.values():
        row["epochs_run"] = len(row["epochs"])
        reached = ", ".join(f"{threshold} after {row['reached'][str(threshold)]['seconds']:.1f} s "
                            f"(epoch {row['reached'][str(threshold)]['epoch']})" if str(threshold) in row["reached"]
                            else f"{threshold} not reached in {row['epochs_run']} epochs" for threshold in THRESHOLDS)
        say(f"  {row['setting']:<24} " + (f"failed: {row['error']}" if row["error"] else reached))
    return list(rows.values())
