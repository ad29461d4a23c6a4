"""Writing output files atomically: the project's one writer lives in ``finetuning.atomic``."""
from finetuning.atomic import atomic_path, atomic_write, check_writable, process_alive, write_json, write_text

__all__ = ["atomic_path", "atomic_write", "check_writable", "process_alive", "write_json", "write_text"]
