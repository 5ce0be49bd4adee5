"""The environment's credentials: a TLS handshake with a serving certificate succeeds
against the CA; tokens and kubeconfigs say what the API server and clients expect."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from pathlib import Path

import yaml

from pincompute.kubeenv.pki import (
    TOKEN_USERS,
    CertificateAuthority,
    combined_kubeconfig,
    kubeconfig,
    new_tokens,
    token_auth_file,
)


def test_a_serving_certificate_verifies_against_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.new()
    serving = ca.serving_certificate(cn="kube-apiserver-x")
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client_ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
    # The names a client of the API server uses: loopback, and the in-cluster service.
    names = ("127.0.0.1", "localhost", "kubernetes.default.svc")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            for _ in names:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        try:
            for name in names:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                        client_ctx.wrap_socket(raw, server_hostname=name) as tls:
                    assert dict(x[0] for x in tls.getpeercert()["subject"]) == {
                        "commonName": "kube-apiserver-x"}
                    tls.sendall(b"x")
        finally:
            server.join(5)


def test_tokens_file_names_every_identity_once() -> None:
    tokens = new_tokens()
    lines = token_auth_file(tokens).decode().splitlines()
    assert [line.split(",")[1] for line in lines] == [user for _, user, _ in TOKEN_USERS]
    assert [line.split(",")[0] for line in lines] == [tokens[who] for who, _, _ in TOKEN_USERS]
    assert len(set(tokens.values())) == len(tokens)


def test_kubeconfigs_embed_the_ca_and_the_token() -> None:
    one = yaml.safe_load(kubeconfig("c1", "https://127.0.0.1:1", b"CA", "tok"))
    assert one["current-context"] == "c1"
    assert base64.b64decode(one["clusters"][0]["cluster"]["certificate-authority-data"]) == b"CA"
    assert one["users"][0]["user"] == {"token": "tok"}
    both = yaml.safe_load(combined_kubeconfig(
        [("a", "https://127.0.0.1:1", "ta"), ("b", "https://127.0.0.1:2", "tb")], b"CA"))
    assert both["current-context"] == "a"
    assert [c["name"] for c in both["contexts"]] == ["a", "b"]
    assert [u["user"]["token"] for u in both["users"]] == ["ta", "tb"]
