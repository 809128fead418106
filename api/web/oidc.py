"""Sign-in through an organisation's own OpenID Connect provider (Entra ID, Keycloak, a Suomi.fi broker).

An administrator configures a provider: its issuer, the client id and secret Vuosikello was registered with, and
the email domains and organisations it serves. The client secret is stored as a Fernet token (the `cryptography`
package) under a key derived from the service's `secret_key`, the pattern of `notifications/webhooks/signing.py`
with a key of its own; it is never logged and never returned.

The flow is the authorization code flow with PKCE (S256). Each start writes one `OidcSignIn` row: the SHA-256 of
its `state` (the browser also gets the state in a cookie, so a callback that reached another browser is
refused), the `nonce` and the PKCE verifier; the callback uses the row up in the same transaction that starts the
session, so a replayed callback (the same code or state) is refused. The id token is checked by Authlib against
the provider's JWKS: signature, issuer, audience, expiry (on the service's clock), nonce. A person is matched by a
*verified* email (`email_verified` true) to an existing active person whose organisation the provider serves;
nobody is created.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import secrets
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import JSON, Column, delete, func, select, update
from sqlmodel import Field, Session, SQLModel, col

from engine.errors import InvalidInput
from engine.models import Organisation, Person, utc_column

with warnings.catch_warnings():
    # Authlib 1.x announces that authlib.jose moves to its successor joserfc in 2.0; its OpenID Connect id token
    # claims (CodeIDToken: iss, aud, exp, iat, nonce) still stand on it, so we stay on it and pin authlib < 2
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import JoseError
    from authlib.oidc.core import CodeIDToken
    from joserfc.errors import JoseError as JoserfcError

__all__ = ["InvalidToken", "OidcProvider", "OidcRefused", "OidcSignIn", "ProviderProblem", "check_issuer",
           "decrypt_client_secret", "discover", "encrypt_client_secret", "finish_sign_in", "provider_for_email",
           "start_sign_in"]

SCOPES = "openid email profile"
CALLBACK_PATH = "/signin/oidc/callback"
ATTEMPT_LIFETIME = timedelta(minutes=10)  # from the button to the callback
HTTP_TIMEOUT = 10.0
LOOPBACK_NAMES = frozenset({"localhost"})
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


class OidcProvider(SQLModel, table=True):
    """An identity provider that signs in the staff of some email domains or organisations."""

    __tablename__ = "oidc_provider"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)  # shown on the button: "Sign in with <name>"
    issuer: str = Field(max_length=500)
    client_id: str = Field(max_length=300)
    client_secret_encrypted: str = Field(max_length=2000)  # Fernet token (encrypt_client_secret)
    domains: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    organisations: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())


class OidcSignIn(SQLModel, table=True):
    """One sign-in attempt from the button to the callback: used up once."""

    __tablename__ = "oidc_sign_in"
    id: int | None = Field(default=None, primary_key=True)
    state_hash: str = Field(max_length=64, unique=True)
    provider_id: int = Field(foreign_key="oidc_provider.id", index=True)
    nonce: str = Field(max_length=100)
    code_verifier: str = Field(max_length=200)
    next: str = Field(default="/tasks", max_length=500)
    created_at: datetime = Field(sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())
    used_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class ProviderProblem(Exception):
    """A provider's configuration cannot be used; `reason` is the message id's last part."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class OidcRefused(Exception):
    """A callback that signs nobody in; `reason` names the page's message (`oidc.refused.<reason>`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def _fernet(service_key: str) -> Fernet:
    derived = hashlib.sha256(b"vuosikello oidc client secrets\x00" + service_key.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_client_secret(secret: str, service_key: str) -> str:
    """Return a client secret encrypted for storage."""
    return _fernet(service_key).encrypt(secret.encode("utf-8")).decode("ascii")


def decrypt_client_secret(token: str, service_key: str) -> str:
    """Return a stored client secret; raises InvalidToken when the service key changed."""
    return _fernet(service_key).decrypt(token.encode("ascii")).decode("utf-8")


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer(issuer: str) -> str:
    """Return the issuer URL without a trailing slash; https only (http only on loopback, for tests)."""
    issuer = issuer.strip().rstrip("/")
    parts = urlsplit(issuer)
    if parts.username or parts.password:
        raise ProviderProblem("issuer_credentials", "the issuer URL may not contain a user name or password")
    if not parts.hostname:
        raise ProviderProblem("issuer_https", "the issuer must be an https:// URL")
    if parts.query or parts.fragment:
        raise ProviderProblem("issuer_https", "the issuer URL may have no query or fragment")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname)):
        return issuer
    raise ProviderProblem("issuer_https", "the issuer must be an https:// URL (http:// only on loopback)")


_DISCOVERED: dict[str, tuple[float, dict[str, Any]]] = {}
DISCOVERY_CACHE_SECONDS = 300.0  # a cache of the documents, not a deadline: on the process's monotonic time


def discover(issuer: str, *, cached: bool = False) -> dict[str, Any]:
    """Fetch and check the provider's discovery document (`/.well-known/openid-configuration`).

    Signing in uses a copy at most five minutes old (`cached`), so each button press does not fetch it again;
    an administrator's save always fetches it.
    """
    if cached:
        hit = _DISCOVERED.get(issuer)
        if hit is not None and time.monotonic() - hit[0] < DISCOVERY_CACHE_SECONDS:
            return hit[1]
    document = _fetch_discovery(issuer)
    _DISCOVERED[issuer] = (time.monotonic(), document)
    return document


def _fetch_discovery(issuer: str) -> dict[str, Any]:
    url = issuer + "/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=HTTP_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise ProviderProblem("discovery_unreachable", f"{url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise ProviderProblem("discovery_unreachable", f"{url}: HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        raise ProviderProblem("discovery_invalid", f"{url}: not JSON") from None
    if not isinstance(document, dict):
        raise ProviderProblem("discovery_invalid", f"{url}: not a JSON object")
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise ProviderProblem("discovery_issuer", f"{url}: names the issuer {document.get('issuer')!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(key)
        if not isinstance(value, str) or not value:
            raise ProviderProblem("discovery_invalid", f"{url}: no {key}")
        check_issuer(value)  # the endpoints are https (loopback http) too
    return document


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def email_domain(email: str) -> str:
    """Return an address's domain, lower case ('' when there is none)."""
    return email.rpartition("@")[2].strip().lower() if "@" in email else ""


def active_providers(session: Session) -> list[OidcProvider]:
    """Return the providers people may sign in with, by name."""
    return list(session.execute(select(OidcProvider).where(col(OidcProvider.active).is_(True))
                                .order_by(col(OidcProvider.name))).scalars())


def _organisation_key(session: Session, person: Person) -> str | None:
    if person.organisation_id is None:
        return None
    org = session.get(Organisation, person.organisation_id)
    return org.key if org else None


def provider_for_email(session: Session, email: str) -> OidcProvider | None:
    """Return the provider of an address's domain, else of its person's organisation (None: the emailed link)."""
    domain = email_domain(email)
    providers = active_providers(session)
    for provider in providers:
        if domain and domain in provider.domains:
            return provider
    person = session.execute(select(Person).where(col(Person.email) == email.strip())).scalars().first()
    key = _organisation_key(session, person) if person is not None and person.active else None
    for provider in providers:
        if key and key in provider.organisations:
            return provider
    return None


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the state to keep in its cookie."""

    url: str
    state: str


def start_sign_in(session: Session, provider: OidcProvider, base_url: str, next_path: str, now: datetime,
                  login_hint: str | None = None) -> Started:
    """Record a new attempt and return the provider's authorization URL (code flow, PKCE S256, state, nonce)."""
    document = discover(provider.issuer, cached=True)
    # attempts are kept a day past their expiry (a late callback is told "expired", not "unknown"), then dropped
    session.execute(delete(OidcSignIn).where(col(OidcSignIn.expires_at) < now - timedelta(days=1)))
    state, nonce, verifier = generate_token(43), generate_token(32), generate_token(64)
    session.add(OidcSignIn(state_hash=_hash(state), provider_id=provider.id or 0, nonce=nonce,
                           code_verifier=verifier, next=next_path, created_at=now,
                           expires_at=now + ATTEMPT_LIFETIME))
    session.flush()
    params = {"response_type": "code", "client_id": provider.client_id, "redirect_uri": redirect_uri(base_url),
              "scope": SCOPES, "state": state, "nonce": nonce,
              "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
    if login_hint:
        params["login_hint"] = login_hint
    endpoint = str(document["authorization_endpoint"])
    return Started(url=endpoint + ("&" if "?" in endpoint else "?") + urlencode(params), state=state)


def redirect_uri(base_url: str) -> str:
    """Return the redirect URI to register at the provider."""
    return base_url.rstrip("/") + CALLBACK_PATH


@dataclass(frozen=True)
class Finished:
    """The person the provider vouched for, and where to go."""

    person: Person
    next: str


def _id_token_claims(document: dict[str, Any], provider: OidcProvider, id_token: str, nonce: str,
                     now: datetime) -> dict[str, Any]:
    try:
        jwks = httpx.get(str(document["jwks_uri"]), timeout=HTTP_TIMEOUT, follow_redirects=False)
        jwks.raise_for_status()
        keys = JsonWebKey.import_key_set(jwks.json())
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcRefused("provider", f"the provider's keys: {type(exc).__name__}") from None
    options = {"iss": {"essential": True, "value": provider.issuer},
               "aud": {"essential": True, "value": provider.client_id},
               "exp": {"essential": True}, "iat": {"essential": True}, "nonce": {"essential": True}}
    try:
        claims = JsonWebToken(ID_TOKEN_ALGORITHMS).decode(
            id_token, keys, claims_cls=CodeIDToken, claims_options=options,
            claims_params={"nonce": nonce, "client_id": provider.client_id})
        claims.validate(now=int(now.timestamp()), leeway=60)
    except (JoseError, JoserfcError) as exc:  # Authlib 1.9 raises joserfc's errors from claims.validate
        raise OidcRefused("token", f"the id token: {exc.error}") from None
    except ValueError as exc:  # a token that is no JWT at all
        raise OidcRefused("token", f"the id token: {type(exc).__name__}") from None
    return dict(claims)


def finish_sign_in(session: Session, *, state: str, cookie_state: str | None, code: str, base_url: str,
                   service_key: str, now: datetime) -> Finished:
    """Use the attempt up, trade the code for tokens, check the id token and find the person; or refuse."""
    if not state or not code:
        raise OidcRefused("state", "no state or no code")
    attempt = session.execute(select(OidcSignIn).where(col(OidcSignIn.state_hash) == _hash(state))
                              ).scalars().first()
    if attempt is None or cookie_state is None or not secrets.compare_digest(cookie_state, state):
        raise OidcRefused("state", "unknown state, or not this browser's")
    # used up before anything else, by one conditional UPDATE: of two callbacks at once only one finds it unused
    if attempt.used_at is not None:
        raise OidcRefused("used", "this sign-in was already used")
    used = session.execute(update(OidcSignIn).where(col(OidcSignIn.id) == attempt.id,
                                                    col(OidcSignIn.used_at).is_(None)).values(used_at=now))
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise OidcRefused("used", "this sign-in was already used")
    if attempt.expires_at <= now:
        raise OidcRefused("expired", "the sign-in attempt expired")
    provider = session.get(OidcProvider, attempt.provider_id)
    if provider is None or not provider.active:
        raise OidcRefused("provider", "the provider is no longer configured")
    try:
        document = discover(provider.issuer, cached=True)
        secret = decrypt_client_secret(provider.client_secret_encrypted, service_key)
    except (ProviderProblem, InvalidToken) as exc:
        raise OidcRefused("provider", type(exc).__name__) from None
    try:
        token = httpx.post(str(document["token_endpoint"]), timeout=HTTP_TIMEOUT, follow_redirects=False,
                           auth=(provider.client_id, secret),
                           data={"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": redirect_uri(base_url), "code_verifier": attempt.code_verifier})
    except httpx.HTTPError as exc:
        raise OidcRefused("provider", f"token endpoint: {type(exc).__name__}") from None
    if token.status_code != 200:
        raise OidcRefused("code", f"token endpoint: HTTP {token.status_code}")
    try:
        id_token = token.json().get("id_token")
    except (ValueError, AttributeError):
        id_token = None
    if not isinstance(id_token, str):
        raise OidcRefused("token", "no id token")
    claims = _id_token_claims(document, provider, id_token, attempt.nonce, now)
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise OidcRefused("email", "the provider gave no email address")
    if claims.get("email_verified") is not True:
        raise OidcRefused("unverified", "the provider has not verified the email address")
    person = session.execute(select(Person).where(  # addresses are kept as typed; a provider may change case
        func.lower(col(Person.email)) == email.strip().lower())).scalars().first()
    if person is None or not person.active:
        raise OidcRefused("unknown", "no active person has this address")
    key = _organisation_key(session, person)
    # organisations listed: the person's must be one of them; else the person's own address must be of a domain
    serves = (key in provider.organisations if provider.organisations
              else email_domain(person.email) in provider.domains)
    if not serves:
        raise OidcRefused("organisation", "the provider does not serve this person's organisation")
    return Finished(person=person, next=attempt.next)


DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass
class ProviderFields:
    """What an administrator sends for a provider (a blank secret on a change keeps the stored one)."""

    name: str
    issuer: str
    client_id: str
    client_secret: str
    domains: list[str]
    organisations: list[str]
    active: bool = True


def _refuse(field: str, reason: str, detail: str, **params: object) -> InvalidInput:
    return InvalidInput(field, detail, message_id=f"oidc.error.{reason}", params=params)


def validate_provider(session: Session, fields: ProviderFields, *, provider: OidcProvider | None) -> ProviderFields:
    """Return the fields cleaned (issuer without trailing slash, domains lower case) or raise InvalidInput.

    A new provider needs its secret. The issuer's discovery document must be reachable and name the issuer
    (checked for a new provider, a changed issuer, or one taken back into use: pausing a provider that is down
    must work); a domain may belong to one provider only (else the address would not say where to sign in);
    organisations must exist.
    """
    provider_id, secret_required = (provider.id if provider else None), provider is None
    name, client_id = fields.name.strip(), fields.client_id.strip()
    for field, value, limit in (("name", name, 200), ("issuer", fields.issuer.strip(), 500),
                                ("client_id", client_id, 300)):
        if not value:
            raise _refuse(field, "required", "required")
        if len(value) > limit or any(ord(c) < 32 for c in value):
            raise _refuse(field, "length", f"at most {limit} characters on one line", max=limit)
    if secret_required and not fields.client_secret:
        raise _refuse("client_secret", "required", "required")
    if len(fields.client_secret) > 1000:
        raise _refuse("client_secret", "length", "at most 1000 characters", max=1000)
    domains = [d.strip().lower().lstrip("@") for d in fields.domains if d.strip()]
    organisations = [o.strip() for o in fields.organisations if o.strip()]
    if not domains and not organisations:
        raise _refuse("domains", "scope", "name at least one email domain or organisation")
    for i, domain in enumerate(domains):
        if not DOMAIN.match(domain):
            raise _refuse(f"domains[{i}]", "domain", f"not an email domain: {domain!r}", value=domain)
    others = session.execute(select(OidcProvider).where(col(OidcProvider.id) != (provider_id or 0))).scalars()
    taken = {d: p.name for p in others for d in p.domains}
    for i, domain in enumerate(domains):
        if domain in taken:
            raise _refuse(f"domains[{i}]", "domain_taken", f"{domain} is served by {taken[domain]}", value=domain,
                          provider=taken[domain])
    if organisations:
        known = set(session.execute(select(col(Organisation.key)).where(
            col(Organisation.key).in_(organisations))).scalars())
        for i, key in enumerate(organisations):
            if key not in known:
                raise _refuse(f"organisations[{i}]", "organisation", f"unknown organisation {key!r}", value=key)
    try:
        issuer = check_issuer(fields.issuer)
        if provider is None or issuer != provider.issuer or (fields.active and not provider.active):
            discover(issuer)
    except ProviderProblem as exc:
        raise _refuse("issuer", exc.reason, str(exc)) from None
    return ProviderFields(name=name, issuer=issuer, client_id=client_id, client_secret=fields.client_secret,
                          domains=sorted(set(domains)), organisations=sorted(set(organisations)),
                          active=fields.active)


def save_provider(session: Session, fields: ProviderFields, service_key: str, now: datetime,
                  provider: OidcProvider | None = None, created_by: int | None = None) -> OidcProvider:
    """Write validated fields to a provider (a new one when none is given); the secret only encrypted."""
    if provider is None:
        provider = OidcProvider(name=fields.name, issuer=fields.issuer, client_id=fields.client_id,
                                client_secret_encrypted="", created_by=created_by, created_at=now)
    provider.name, provider.issuer, provider.client_id = fields.name, fields.issuer, fields.client_id
    provider.domains, provider.organisations, provider.active = fields.domains, fields.organisations, fields.active
    if fields.client_secret:
        provider.client_secret_encrypted = encrypt_client_secret(fields.client_secret, service_key)
    session.add(provider)
    session.flush()
    return provider
