"""Who may use the app: the bind address, the login, the editor of a session.

    settings()             Access: the bind address and the mode ("oidc", "proxy", "anonymous", "local")
    refuse_unsafe_start()  when `streamlit run` imports app.py: one line on stderr and exit 2 if the
                           server would listen beyond loopback with nobody asked who they are
    gate()                 at the top of every run: the login wall, the proxy check, the anonymous banner
    current_editor()       the signed-in user (st.user) or the proxy's user header, else None
    media_access(scope)    the same rule for the media routes (they are not behind Streamlit's session)

Modes: "oidc" when `.streamlit/secrets.toml` has an [auth] section for `st.login`; "proxy" when
$SPOTTING_TRUSTED_USER_HEADER names the header a reverse proxy sets to the signed-in user;
"anonymous" when $SPOTTING_ALLOW_ANONYMOUS=1 (a banner says so); else "local": loopback only, and a
session or media request that still arrives from another machine (a same-host proxy, a server started
without `streamlit run`) is refused.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st

from spotting_core.errors import warn

ENV_ALLOW_ANONYMOUS = "SPOTTING_ALLOW_ANONYMOUS"
ENV_USER_HEADER = "SPOTTING_TRUSTED_USER_HEADER"
WILDCARD = "0.0.0.0"  # what Streamlit binds when server.address is not set
ANONYMOUS_BANNER = ("Open to anyone who can reach this server ({address}, no login: "
                    f"{ENV_ALLOW_ANONYMOUS}=1). Decisions are not attributed to anyone.")
LOCAL_ONLY = ("This server was started for its own machine only (no login configured): see README, "
              "Running it for a team.")


@dataclass(frozen=True)
class Access:
    address: str
    mode: str                    # "oidc" | "proxy" | "anonymous" | "local"
    header: str = ""             # the trusted user header ("proxy")
    providers: tuple[str, ...] = ()  # st.login providers ("oidc"); "default" is st.login()
    problem: str = ""            # why the server must not start, "" if it may


def bind_address() -> str:
    """The address the server listens on: Streamlit's `server.address` (flag, env, config.toml)."""
    from streamlit import config

    return str(config.get_option("server.address") or WILDCARD).strip()


def is_loopback(address: str) -> bool:
    """Only this machine can connect: localhost, 127.0.0.0/8, ::1 (or a unix socket)."""
    host = address.strip().strip("[]").lower()
    if host in ("localhost", "ip6-localhost") or host.startswith("unix://"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _oidc() -> tuple[tuple[str, ...], str]:
    """The st.login providers of secrets.toml's [auth] section and what is wrong with them ("" if nothing)."""
    from streamlit import auth_util
    from streamlit.errors import StreamlitAuthError
    from streamlit.runtime.secrets import secrets_singleton

    try:
        auth = secrets_singleton.get("auth") if secrets_singleton.load_if_toml_exists() else None
    except Exception as e:  # a malformed secrets.toml: Streamlit's parser error, on one line
        return (), f"secrets.toml cannot be read ({' '.join(str(e).split())})"
    if not auth:
        return (), ""
    named = [k for k, v in auth.items() if isinstance(v, Mapping) and k != "client_kwargs"]
    providers = tuple((["default"] if "client_id" in auth or not named else []) + named)
    if not auth_util.is_authlib_installed():
        return providers, ("secrets.toml configures st.login ([auth]) but Authlib is missing: "
                           "pip install 'Authlib>=1.3.2'")
    for name in providers:
        try:
            auth_util.validate_auth_credentials(name)
        except StreamlitAuthError as e:
            return providers, " ".join(str(e).split())
    return providers, ""


def settings() -> Access:
    """How this server decides who may use it (read from the environment and Streamlit's config)."""
    address = bind_address()
    providers, problem = _oidc()
    header = os.environ.get(ENV_USER_HEADER, "").strip()
    anonymous = os.environ.get(ENV_ALLOW_ANONYMOUS, "").strip().lower() in ("1", "true", "yes")
    if providers:
        mode = "oidc"
    elif header:
        mode = "proxy"
    elif anonymous:
        mode = "anonymous"
    else:
        mode = "local"
    if not problem and mode == "local" and not is_loopback(address):
        problem = (f"not starting: the server would listen on {address} (server.address), open to other "
                   "machines, without a login: configure st.login in .streamlit/secrets.toml ([auth]), or run "
                   f"it behind a reverse proxy and set {ENV_USER_HEADER} to its user header, or set "
                   f"{ENV_ALLOW_ANONYMOUS}=1 on a trusted network (README: Running it for a team)")
    return Access(address=address, mode=mode, header=header, providers=providers, problem=problem)


def refuse_unsafe_start() -> Access:
    """Called while `streamlit run` imports app.py, before any request: exit 2 with one line if unsafe."""
    access = settings()
    if access.problem:
        print(f"error: {access.problem}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    if access.mode == "proxy" and not is_loopback(access.address):
        warn(f"{access.header} is trusted from whoever reaches {access.address}: let only the reverse proxy "
             "reach this port, and have it replace that header on every request")
    return access


# ---------------------------------------------------------------------------------------------
# The editor of a session, and the gate at the top of every run
# ---------------------------------------------------------------------------------------------
def request_headers() -> Mapping[str, str]:
    """The headers of the request that opened this session (the proxy's, behind one)."""
    return st.context.headers


def _clean(value) -> str | None:
    text = re.sub(r"[\x00-\x1f\x7f]", "", str(value or "")).strip()[:200]
    return text or None


def current_editor(access: Access | None = None) -> str | None:
    """Who is deciding: the proxy's user header ("proxy"), else the st.login user, else None."""
    access = access or settings()
    if access.header:
        wanted = access.header.lower()
        return _clean(next((v for k, v in request_headers().items() if k.lower() == wanted), None))
    user = st.user.to_dict()
    if user.get("is_logged_in"):
        return _clean(user.get("email") or user.get("name") or user.get("sub"))
    return None


def gate() -> str | None:
    """Stop the run until the user is known where a login is configured; show the anonymous banner.
    Returns the editor (None when nobody is asked)."""
    access = settings()
    editor = current_editor(access)
    remote = st.context.ip_address  # None for loopback; behind a local proxy, the client it forwards for
    if access.problem or (access.mode == "local" and remote and not is_loopback(remote)):
        st.error(access.problem or LOCAL_ONLY, icon=":material/lock:")
        st.stop()
    if access.mode == "oidc" and editor is None:
        st.header("Spotting review")
        st.info("Sign in to review matches.", icon=":material/lock:")
        for name in access.providers:
            st.button("Sign in" if name == "default" else f"Sign in with {name}", key=f"login_{name}",
                      on_click=st.login, args=() if name == "default" else (name,), type="primary")
        st.stop()
    if access.mode == "proxy" and editor is None:
        st.error(f"This server takes the user from the {access.header} header of its reverse proxy, and this "
                 "request has none: open the app through the proxy.", icon=":material/lock:")
        st.stop()
    if access.mode == "anonymous":
        st.warning(ANONYMOUS_BANNER.format(address=access.address), icon=":material/public:")
    if editor:
        st.sidebar.caption(f"Signed in as **{editor}**")
        if access.mode == "oidc":
            st.sidebar.button("Sign out", key="logout", on_click=st.logout)
    return editor


# ---------------------------------------------------------------------------------------------
# The media routes
# ---------------------------------------------------------------------------------------------
def _cookie_user(cookies: Mapping[str, str]) -> str | None:
    """The user of Streamlit's signed st.login cookie, or None (absent, forged, expired, logged out)."""
    try:  # Streamlit's own reader of its cookie (not a public API: fail closed if it moves)
        from streamlit.auth_util import get_cookie_with_chunks
        from streamlit.web.server.server_util import get_cookie_secret
        from streamlit.web.server.starlette.starlette_app_utils import decode_signed_value
        from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME
    except ImportError:
        return None
    secret = get_cookie_secret()

    def one(name: str) -> bytes | None:
        raw = cookies.get(name)
        return None if raw is None else decode_signed_value(secret, name, raw.encode("latin-1"))

    raw = get_cookie_with_chunks(one, USER_COOKIE_NAME)
    try:
        payload = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict) or not payload.get("is_logged_in"):
        return None
    return _clean(payload.get("email") or payload.get("name") or payload.get("sub") or "signed in")


_MEDIA_ACCESS: list[Access] = []


def media_access(scope: dict) -> tuple[int, str] | None:
    """None if this request may read media, else (status, one line): the session's rule, per request."""
    from starlette.requests import Request

    if not _MEDIA_ACCESS:
        _MEDIA_ACCESS.append(settings())  # decided once, when the server starts
    access = _MEDIA_ACCESS[0]
    request = Request(scope)
    if access.mode == "oidc" and _cookie_user(request.cookies) is None:
        return 401, "Sign in to the app first."
    if access.mode == "proxy" and not _clean(request.headers.get(access.header)):
        return 401, f"No {access.header} header: open the app through its reverse proxy."
    if access.mode == "local":
        ends = [(scope.get("server") or ("",))[0], (scope.get("client") or ("",))[0]]  # our socket, the peer
        if any(host and not is_loopback(str(host)) for host in ends):
            return 403, LOCAL_ONLY
    return None
