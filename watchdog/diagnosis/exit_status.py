"""What a program's exit status means, in both languages."""
from __future__ import annotations

import signal

from watchdog.model import Texts

_KNOWN: dict[int, Texts] = {
    1: Texts("一般错误退出", "general error"),
    2: Texts("命令用法错误", "misuse of the command (bad arguments)"),
    126: Texts("命令无法执行（没有执行权限或不是可执行文件）", "command found but not executable (permission or format)"),
    127: Texts("命令不存在（PATH 中找不到或文件缺失）", "command not found (missing file or not on PATH)"),
    137: Texts("被 SIGKILL 杀死，通常是内存不足 (OOM) 或被强制停止", "killed by SIGKILL, usually out of memory (OOM) or a forced stop"),
    139: Texts("段错误 (SIGSEGV)，程序崩溃", "segmentation fault (SIGSEGV): the program crashed"),
    143: Texts("收到 SIGTERM 被终止", "terminated by SIGTERM"),
}


def explain_exit(status: int | None) -> Texts | None:
    """A short explanation of ``status``; ``None`` when there is nothing to say."""
    if status is None:
        return None
    if status in _KNOWN:
        return _KNOWN[status]
    if 128 < status < 128 + 65:
        try:
            name = signal.Signals(status - 128).name
        except ValueError:
            name = f"signal {status - 128}"
        return Texts(f"被信号 {name} 终止", f"killed by signal {name}")
    if status == 0:
        return Texts("正常退出（但 supervisord 没有预期它退出）", "exited with status 0 (but supervisord did not expect it to exit)")
    return Texts(f"退出码 {status}", f"exit status {status}")
