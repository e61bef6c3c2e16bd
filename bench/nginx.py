"""The optional nginx contender: a generated config, one worker, proxy buffering off."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from bench.contenders import Contender, Running, Setting
from bench.procs import Child, free_port, pin_argv

CONFIG = """worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/nginx-body;
    proxy_temp_path {workdir}/nginx-proxy;
    fastcgi_temp_path {workdir}/nginx-fastcgi;
    uwsgi_temp_path {workdir}/nginx-uwsgi;
    scgi_temp_path {workdir}/nginx-scgi;
    upstream llm {{
        server {upstream};
        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://llm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    """The nginx binary; installed from Debian when missing and this is root."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError("nginx is not installed: apt-get install -y nginx")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "nginx"], check=True, env=env
    )
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_config(workdir: Path, port: int, upstream_url: str) -> str:
    """nginx.conf for a bare reverse proxy to `upstream_url` on 127.0.0.1:`port`."""
    upstream = urlsplit(upstream_url).netloc
    return CONFIG.format(workdir=workdir, port=port, upstream=upstream)


async def start_nginx(setting: Setting, repetition: int) -> Running:
    """nginx in the foreground, master and one worker pinned to the proxy core."""
    binary = nginx_binary()
    port = free_port()
    config = setting.workdir / "nginx.conf"
    config.write_text(nginx_config(setting.workdir, port, setting.upstream_url))
    argv = [
        binary,
        "-c",
        str(config),
        "-p",
        str(setting.workdir),
        "-e",
        str(setting.workdir / "nginx-error.log"),
    ]
    child = Child(
        "nginx", pin_argv(argv, setting.cores.proxy), setting.workdir / f"nginx-{repetition}.log"
    )
    try:
        await child.wait_for_port(port, timeout=15)
    except BaseException:
        child.stop()
        raise
    return Running(f"http://127.0.0.1:{port}", child)


NGINX = Contender("nginx", "nginx 1 worker, proxy_buffering off, upstream keepalive", start_nginx)
