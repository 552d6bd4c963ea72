"""Add an annotator account to a Label Studio 1.23.2 server (`bash tools/labelstudio.sh adduser`).

    ALNSFW_LS_TOKEN=<admin API token> ALNSFW_LS_NEW_PASSWORD=<their password> \
        python3 tools/labelstudio_adduser.py http://127.0.0.1:8080 annotator@example.com

Why through the invite link: in 1.23.2 `POST /api/users/` makes a user without a password (the
serializer has no password field), so nobody can log in with it, and `label-studio user` only
prints a user. The organisation's invite link (`GET /api/invite`, what "Organization -> Add
People" shows) leads to the sign-up form, which makes the user with a password and adds it to the
organisation, so it sees the team's projects. This posts that form as a browser would (CSRF
cookie first). Standard library only; neither secret is printed or written.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request


def _fail(message: str) -> None:
    print(f"labelstudio adduser: {message}", file=sys.stderr)
    sys.exit(1)


def add_user(url: str, email: str, password: str, token: str) -> None:
    """Sign `email` up through the organisation's invite link; raises SystemExit with what to do."""
    url = url.rstrip("/")
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    try:
        with opener.open(
            urllib.request.Request(
                f"{url}/api/invite", headers={"Authorization": f"Token {token}"}
            ),
            timeout=30,
        ) as r:
            invite = json.load(r)["token"]
    except urllib.error.HTTPError as err:
        _fail(f"{url} refused the admin token (HTTP {err.code}): set ALNSFW_LS_TOKEN to it")
    except urllib.error.URLError as err:
        _fail(f"{url} is not reachable ({err.reason}): start it (make labelstudio)")
    signup = f"{url}/user/signup/?token={urllib.parse.quote(invite)}"
    with opener.open(signup, timeout=30):
        pass  # sets the csrftoken cookie
    csrf = next((c.value for c in jar if c.name == "csrftoken"), None)
    if csrf is None:
        _fail(f"{url}/user/signup/ set no CSRF cookie: is this Label Studio 1.23?")
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": csrf, "email": email, "password": password}
    ).encode()
    request = urllib.request.Request(signup, data=form, headers={"Referer": signup})
    try:
        with opener.open(request, timeout=30) as r:
            page, landed = r.read().decode("utf-8", "replace"), r.geturl()
    except urllib.error.HTTPError as err:
        _fail(f"the sign-up form answered HTTP {err.code}")
    if "/user/signup" in urllib.parse.urlparse(landed).path:  # the form came back: an error
        lists = re.findall(r'<ul class="field_errors">(.*?)</ul>', page, re.S)
        errors = [html.unescape(e) for part in lists for e in re.findall(r"<li>(.*?)</li>", part)]
        reasons = "; ".join(dict.fromkeys(errors)) or "see the server log"
        _fail(f"Label Studio did not make {email}: {reasons}")
    print(f"added {email}: they log in at {url}/user/login/ with the password you set")


def main() -> None:
    if len(sys.argv) != 3:
        _fail("usage: labelstudio_adduser.py URL EMAIL (passwords from the environment)")
    token = os.environ.get("ALNSFW_LS_TOKEN")
    password = os.environ.get("ALNSFW_LS_NEW_PASSWORD")
    if not token:
        _fail("set ALNSFW_LS_TOKEN to the admin's API token")
    if not password:
        _fail("set ALNSFW_LS_NEW_PASSWORD to the new account's password (>= 8 characters)")
    add_user(sys.argv[1], sys.argv[2], password, token)


if __name__ == "__main__":
    main()
