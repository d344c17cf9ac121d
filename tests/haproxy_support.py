"""deploy/haproxy.cfg rendered for agent processes on this machine instead of compose's
replicas: its marked blocks (`# NAME-begin` … `# NAME-end`) are replaced as text."""

from __future__ import annotations

import re
from pathlib import Path

HAPROXY_CFG = Path(__file__).resolve().parent.parent / "deploy" / "haproxy.cfg"


def replace_block(text: str, name: str, lines: list[str]) -> str:
    """The lines between `# NAME-begin` and `# NAME-end` (markers included) as `lines`."""
    block = re.compile(rf"^# {name}-begin\n.*?^# {name}-end\n", re.MULTILINE | re.DOTALL)
    found = block.findall(text)
    if len(found) != 1:
        raise ValueError(f"{HAPROXY_CFG.name}: expected one `# {name}-begin/end` block")
    return block.sub(lambda _: "".join(f"{line}\n" for line in lines), text)


def haproxy_config_for(servers: list[tuple[str, int]], bind_port: int) -> str:
    """The deployed configuration with `server aN HOST:PORT check` for each of `servers`
    (normally 127.0.0.1), listening on 127.0.0.1:bind_port, without Docker's resolvers
    and without the stats listener. Checks, timeouts and balancing stay as deployed."""
    if not servers:
        raise ValueError("at least one server")
    text = HAPROXY_CFG.read_text()
    text = replace_block(text, "resolvers", [])
    text = replace_block(text, "stats", [])
    text = replace_block(text, "bind", [f"    bind 127.0.0.1:{bind_port}"])
    lines = [f"    server a{n} {host}:{port} check" for n, (host, port) in enumerate(servers, 1)]
    return replace_block(text, "servers", lines)
