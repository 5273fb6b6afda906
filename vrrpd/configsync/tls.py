"""Node identity for config sync: key generation, TLS 1.3 contexts, certificate pinning.

Every node has one PEM file holding its private key (EC P-256) and a self-signed certificate.
Peers are identified by the SHA-256 fingerprint of their certificate (DER), never by a CA.

Python's :mod:`ssl` has no verification callback, so a self-signed client certificate cannot be
*requested* by the server without OpenSSL rejecting it in the handshake.  Both directions are
therefore pinned like this, before any request is read:

* the client connects with verification disabled (``CERT_NONE``) and checks the server's
  certificate fingerprint itself right after the handshake (:func:`peer_fingerprint`);
* the server sends a random challenge; the client answers with its certificate and an ECDSA
  signature over :func:`client_proof_message` (context string, challenge, the server's
  fingerprint, the TLS channel binding, which must be present).  The server checks the
  certificate's fingerprint against its pins and the signature with that certificate's key.
  The signature is bound to this server and this connection, so it cannot be replayed
  elsewhere.
"""

from __future__ import annotations

import datetime
import hashlib
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vrrpd.daemon.persist import write_atomic

PROOF_CONTEXT = b"vrrpd-sync-v1 client proof\0"
CERT_DAYS = 100 * 365


class PinError(Exception):
    """A peer's certificate is missing, unpinned or its proof does not verify."""


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, lowercase hex without colons (the config's format)."""
    return hashlib.sha256(der).hexdigest()


def keygen(path: Path, name: str) -> str:
    """Create ``path`` (mode 0600): a new EC P-256 key and a self-signed cert for ``name``.

    Returns the certificate's fingerprint, to be listed in the peers' ``peer_fingerprints``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"vrrpd-sync {name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_atomic(path, pem + cert.public_bytes(serialization.Encoding.PEM), 0o600)
    return fingerprint(cert.public_bytes(serialization.Encoding.DER))


class Identity:
    """This node's key and certificate, loaded from the ``cert`` PEM file."""

    def __init__(self, path: Path) -> None:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise PinError(f"cannot read sync cert {path}: {exc.strerror}") from None
        try:
            self.cert = x509.load_pem_x509_certificate(pem)
            key = serialization.load_pem_private_key(pem, password=None)
        except ValueError as exc:
            raise PinError(f"{path} must hold a PEM private key and certificate "
                           f"(`vrrpd config-sync keygen --cert {path}`): {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PinError(f"{path}: the key must be an EC key (`vrrpd config-sync keygen`)")
        self.key = key
        self.path = path
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.fingerprint = fingerprint(self.der)

    def _context(self, purpose: ssl.Purpose) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH
                             else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # pinned by fingerprint after the handshake
        ctx.load_cert_chain(self.path)
        return ctx

    def server_context(self) -> ssl.SSLContext:
        return self._context(ssl.Purpose.CLIENT_AUTH)

    def client_context(self) -> ssl.SSLContext:
        return self._context(ssl.Purpose.SERVER_AUTH)

    def prove(self, message: bytes) -> bytes:
        return self.key.sign(message, ec.ECDSA(hashes.SHA256()))


def peer_fingerprint(ssl_object: ssl.SSLObject | None, pins: frozenset[str]) -> str:
    """The pinned fingerprint of the peer of a finished handshake, or :class:`PinError`."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise PinError("the peer presented no certificate")
    fp = fingerprint(der)
    if fp not in pins:
        raise PinError(f"peer certificate sha256:{fp} is not in peer_fingerprints")
    return fp


def channel_binding(ssl_object: ssl.SSLObject | None) -> bytes:
    """``tls-unique`` of the connection; :class:`PinError` when OpenSSL gives none.

    The proof must be bound to this TLS connection, or a relay could forward a challenge to
    the real peer and replay its answer; a connection without a binding is refused rather
    than authenticated with a weaker proof.
    """
    try:
        binding = ssl_object.get_channel_binding("tls-unique") if ssl_object else None
    except (ValueError, ssl.SSLError):
        binding = None
    if not binding:
        raise PinError("the TLS connection offers no channel binding (tls-unique); refused")
    return binding


def client_proof_message(challenge: bytes, server_fp: str, binding: bytes) -> bytes:
    """What the client signs: bound to the challenge, the server and the connection."""
    return PROOF_CONTEXT + challenge + bytes.fromhex(server_fp) + binding


def verify_client_proof(cert_der: bytes, signature: bytes, message: bytes,
                        pins: frozenset[str]) -> str:
    """Check the client's certificate pin and its signature; return its fingerprint."""
    fp = fingerprint(cert_der)
    if fp not in pins:
        raise PinError(f"client certificate sha256:{fp} is not in peer_fingerprints")
    try:
        key = x509.load_der_x509_certificate(cert_der).public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise PinError("client certificate key is not EC")
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise PinError("client proof of key possession does not verify") from None
    return fp
