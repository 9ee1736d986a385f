"""The certificate the TLS workloads' servers present."""

import subprocess
from pathlib import Path


def bench_cert(workdir):
    """A self-signed certificate for the TLS workloads (made once per run)."""
    crt, key = Path(workdir) / "cert.pem", Path(workdir) / "key.pem"
    if not crt.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                        "-out", str(crt), "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
    return crt, key
