"""The gateway as a process part: TLS, the admin token file, listen addresses, the command."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pincompute.gateway import Gateway, parse_listen
from pincompute.region import Region


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "tls.crt", tmp / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8443") == ("127.0.0.1", 8443)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("8443", "host:", ":80", "h:99999", "h:x"):
        with pytest.raises(ValueError, match="--listen"):
            parse_listen(bad)


@pytest.mark.slow
async def test_tls_and_the_admin_token_survives_a_restart(region_dir: Path,
                                                          tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=0, runtime="sim",
                               health_port=None)
    try:
        await region.start()
        async with Gateway.start(region, tls_cert=cert, tls_key=key) as gw:
            assert gw.url.startswith("https://127.0.0.1:")
            first = gw.admin_token
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=cert)) as c:
                r = await c.get(f"{gw.url}/api/v1/clusters",
                                headers={"Authorization": f"Bearer {first}"})
                assert r.status_code == 200
            async with httpx.AsyncClient() as c:
                with pytest.raises(httpx.TransportError):
                    await c.get(gw.url.replace("https", "http") + "/healthz")
        token_file = region.data_dir / "admin-token"
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        async with Gateway.start(region) as gw:
            assert gw.admin_token == first  # still valid: reused, not minted again
        with pytest.raises(ValueError, match="both"):
            async with Gateway.start(region, tls_cert=cert):
                pass
    finally:
        await region.close()


@pytest.mark.slow
def test_the_command_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pincompute.cli.main", "api", *args],
                              capture_output=True, text=True, timeout=60)

    r = run("--listen", "nowhere")
    assert r.returncode == 2 and "--listen" in r.stderr and "Traceback" not in r.stderr
    r = run("--kubeconfig", str(tmp_path / "missing.kubeconfig"), "--listen",
            "127.0.0.1:0", "--admin-token-file", str(tmp_path / "t"))
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout, r.stderr
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1, r.stderr
