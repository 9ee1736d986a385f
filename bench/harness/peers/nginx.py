"""nginx, in its best configuration for each test, written to the run's work directory:
one worker, no access log, keep-alive connections never cut short by a request count
or a short timeout."""

import os
import resource
import shutil
import subprocess
from pathlib import Path

from ..common import HOST, PEERS
from .tls import bench_cert

# What `location /` does in the hello-world configuration.
HELLO_LOCATION = 'return 200 "Hello, world";'


def nginx_path():
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def missing():
    return None if nginx_path() else "nginx missing (nginx-light)"


def version():
    r = subprocess.run([nginx_path(), "-v"], capture_output=True, text=True)
    return r.stderr.strip().replace("nginx version: ", "")


def hello_command(port, workdir, http2=False, tls=False, location=HELLO_LOCATION):
    """nginx answering every request from `location / { LOCATION }`.

    http2: `listen ... http2` (HTTP/2 by prior knowledge on clear text; by ALPN with
    TLS, where HTTP/1.1 clients such as wrk still get HTTP/1.1). tls: `ssl` with the
    run's self-signed certificate. location: the body of `location /`, by default
    `return 200 "Hello, world";` (a static-file workload would put `root DIR;` here).
    """
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    conns = max(1024, min(nofile - 100, 30000))
    configure = subprocess.run([nginx_path(), "-V"], capture_output=True, text=True).stderr
    temp_paths = [f"client_body_temp_path {workdir}/client_body;"]
    for module in ("proxy", "fastcgi", "uwsgi", "scgi"):
        if f"--without-http_{module}_module" not in configure:
            temp_paths.append(f"{module}_temp_path {workdir}/{module};")
    listen = f"listen {HOST}:{port}{' ssl' if tls else ''}{' http2' if http2 else ''} backlog=4096;"
    if tls:
        crt, key = bench_cert(workdir)
        listen += f"\n        ssl_certificate {crt};\n        ssl_certificate_key {key};"
    # As root, nginx's workers drop to `nobody`, who cannot read a docroot under the
    # run's private (0700) work directory: keep the workers' user the caller's.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = f"""
daemon off;
master_process on;
{user}
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {workdir}/nginx-{port}.pid;
error_log {workdir}/nginx-error.log warn;
events {{
    worker_connections {conns};
    multi_accept on;
}}
http {{
    access_log off;
    default_type text/plain;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    {" ".join(temp_paths)}
    server {{
        {listen}
        location / {{
            {location}
        }}
    }}
}}
"""
    conf_path = Path(workdir) / f"nginx-{port}.conf"
    conf_path.write_text(conf)
    return [nginx_path(), "-p", str(workdir), "-e", f"{workdir}/nginx-error.log",
            "-c", str(conf_path)]


def h2_command(tls):
    """hello_command over HTTP/2: prior knowledge on clear text, ALPN with TLS."""
    return lambda port, workdir: hello_command(port, workdir, http2=True, tls=tls)


def fastcgi_argv(port, workdir, sock):
    """nginx in front of the php-fpm pool on `sock` (peers/php_fpm.py starts both)."""
    conf = f"""
daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx-php-{port}.pid;
error_log {workdir}/nginx-php-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_temp_path {workdir}/client_body;
    fastcgi_temp_path {workdir}/fastcgi;
    upstream php {{ server unix:{sock}; keepalive 2; }}
    server {{
        listen {HOST}:{port} backlog=4096;
        root {PEERS / "php"};
        index index.php;
        location / {{ try_files $uri $uri/ /index.php$is_args$args; }}
        location ~ \\.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_keep_conn on;
            fastcgi_pass php;
        }}
    }}
}}
"""
    conf_path = Path(workdir) / f"nginx-php-{port}.conf"
    conf_path.write_text(conf)
    return [nginx_path(), "-p", str(workdir), "-e", f"{workdir}/nginx-php-error.log",
            "-c", str(conf_path)]


def proxy_argv(port, workdir, up_port):
    """nginx as a reverse proxy to the upstream on `up_port` (peers/upstream.py starts
    both)."""
    conf = f"""
daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx-proxy-{port}.pid;
error_log {workdir}/nginx-proxy-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    upstream up {{ server {HOST}:{up_port}; keepalive 64; keepalive_requests 100000000; }}
    server {{
        listen {HOST}:{port} backlog=4096;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}
}}
"""
    conf_path = Path(workdir) / f"nginx-proxy-{port}.conf"
    conf_path.write_text(conf)
    return [nginx_path(), "-p", str(workdir), "-e", f"{workdir}/nginx-proxy-error.log",
            "-c", str(conf_path)]
