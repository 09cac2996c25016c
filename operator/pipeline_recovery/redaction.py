"""Secret redaction for log text before it reaches the LLM or a status: pure, fast, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_Builder = Callable[[re.Match[str]], str]
_Rule = tuple[str, re.Pattern[str], _Builder]
_I = re.IGNORECASE


def _tag(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def _whole(kind: str) -> _Builder:
    return lambda _m: _tag(kind)


def _keep(kind: str) -> _Builder:
    """Keep the named groups 'pre' (key, separator, quote) and 'post'; replace what lies between."""
    return lambda m: m.group("pre") + _tag(kind) + (m.groupdict().get("post") or "")


# Shell errors name an unset variable after "KEY:"; the words that follow are the diagnosis.
_SHELL_DIAGNOSTICS = ("parameter null or not set", "parameter not set", "unbound variable")


def _generic(m: re.Match[str]) -> str:
    value = m.group("val")
    following = (value + m.string[m.end() : m.end() + 32]).lower()
    if following.startswith(_SHELL_DIAGNOSTICS):
        return m.group(0)
    quote = value[0] if value[:1] in {"'", '"'} else ""
    inner = value[1:-1] if quote else value
    lowered = inner.lower()
    # Placeholders and references are not secrets, and keeping them keeps a config error readable.
    if (
        not inner
        or lowered in {"null", "none", "true", "false", "nil", "undefined", "***", "<redacted>"}
        or inner.startswith(("${", "$(", "[REDACTED"))
    ):
        return m.group(0)
    return m.group("pre") + quote + _tag("secret") + quote


_AWS_CONTEXT = re.compile(r"\b(?:aws|amazon|s3)\b", _I)


def _bare_aws_secret(m: re.Match[str]) -> str:
    """Redact a 40-char base64 run only on a line that mentions AWS and only when mixed-case,
    so that git SHAs (lowercase hex) in an S3 upload line survive."""
    value = m.group(0)
    if value.lower() == value or value.upper() == value:
        return value
    text, pos = m.string, m.start()
    end = text.find("\n", pos)
    line = text[text.rfind("\n", 0, pos) + 1 : end if end >= 0 else len(text)]
    return _tag("aws-secret-access-key") if _AWS_CONTEXT.search(line) else value


# A key ends with one of these words (DB_PASSWORD, x-api-key, npmAuthToken, "password").
# Only the word next to the separator matters, so the key's prefix is not matched at all:
# that keeps this rule a cheap literal scan on big logs.
_GENERIC_KEY = r"(?:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key)"

# The fixed-prefix vendor formats in one pass; the group that matched names the kind.
_VENDOR = re.compile(
    r"\b(?:(?P<github_token>gh[pousr]_[A-Za-z0-9]{30,255}\b|github_pat_\w{40,255}\b)"
    r"|(?P<gitlab_token>gl(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt|agent)-[A-Za-z0-9_-]{20,})"
    r"|(?P<npm_token>npm_[A-Za-z0-9]{36}\b)"
    r"|(?P<pypi_token>pypi-AgE[A-Za-z0-9_-]{50,})"
    r"|(?P<slack_token>xox[abeoprs]-[A-Za-z0-9-]{10,})"
    r"|(?P<aws_access_key_id>(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b)"
    r"|(?P<jwt>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}))"
)

# Order matters: whole blocks and structured forms (private keys, JSON fields, URLs, vendor
# formats) go first so that the generic `key=value` rule at the end cannot cut one in half
# and leave the tail of a secret behind.
_RULES: tuple[_Rule, ...] = (
    (
        "private-key",
        # A whole block, or (excerpt cut short) BEGIN up to the next blank line or the end.
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*?(?=\n[ \t]*\n|\Z))",
            re.DOTALL,
        ),
        _whole("private-key"),
    ),
    (
        "gcp-service-account",
        re.compile(r"(?P<pre>\"private_key(?:_id)?\"\s*:\s*\")(?:[^\"\\]|\\.)*(?P<post>\")"),
        _keep("gcp-service-account"),
    ),
    (
        "docker-auth",
        re.compile(
            r"(?P<pre>\"(?:auth|identitytoken|registrytoken)\"\s*:\s*\")[^\"]+(?P<post>\")", _I
        ),
        _keep("docker-auth"),
    ),
    (
        "slack-webhook",
        re.compile(r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[\w/+-]+"),
        _whole("slack-webhook"),
    ),
    (
        "basic-auth-url",
        re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://)[^\s/@:'\"]+:[^\s/@'\"]+(?P<post>@)", _I),
        _keep("basic-auth-url"),
    ),
    ("azure-sas", re.compile(r"(?P<pre>[?&]sig=)[A-Za-z0-9%+/=]+", _I), _keep("azure-sas")),
    (
        "azure-connection-string",
        re.compile(
            r"(?P<pre>\b(?:AccountKey|SharedAccessKey|SharedAccessSignature|SharedSecretValue)"
            r"\s*=\s*)[^;\s'\"]+",
            _I,
        ),
        _keep("azure-connection-string"),
    ),
    (
        "bearer-token",
        re.compile(r"(?P<pre>\bBearer\s+)(?!\[REDACTED)[A-Za-z0-9._~+/=-]{8,}", _I),
        _keep("bearer-token"),
    ),
    (
        "authorization-header",
        re.compile(
            r"(?P<pre>\b(?:Proxy-)?Authorization[\"']?\s*[:=]\s*[\"']?"
            r"(?:(?:Basic|Bearer|Token|Digest|AWS4-HMAC-SHA256)\s+)?)"
            r"(?!\[REDACTED|(?:Basic|Bearer|Token|Digest)\b)[^\s\"']{6,}",
            _I,
        ),
        _keep("authorization-header"),
    ),
    (
        "npm-token",
        re.compile(r"(?P<pre>:_(?:authToken|auth|password)\s*=\s*)\S+"),
        _keep("npm-token"),
    ),
    (
        "vendor-token",
        _VENDOR,
        lambda m: _tag((m.lastgroup or "secret").replace("_", "-")),
    ),
    (
        "aws-secret-access-key",
        re.compile(
            r"(?P<pre>\b(?:aws_?)?secret_?access_?key(?:_id)?[\"']?\s*[:=]\s*[\"']?)"
            r"[A-Za-z0-9/+=]{20,}",
            _I,
        ),
        _keep("aws-secret-access-key"),
    ),
    (
        "aws-secret-access-key",
        # A bare 40-char base64 run on a line that talks about AWS; see _bare_aws_secret.
        re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
        lambda m: _bare_aws_secret(m),
    ),
    (
        "secret",
        re.compile(
            r"(?P<pre>--(?:password|passwd|token|api-key|secret|client-secret)[ \t]+)(?!-)\S+", _I
        ),
        _keep("secret"),
    ),
    (
        "secret",
        # key=value, key: value, "key": "value", 'key' => 'value'; the key may carry a prefix
        # (DB_PASSWORD, x-api-key, npmAuthToken).
        re.compile(
            rf"(?P<pre>{_GENERIC_KEY}[\"']?[ \t]*(?:=>|=|:)[ \t]*)"
            r"(?P<val>\"[^\"\n]*\"|'[^'\n]*'|\$\{[^}\s]*\}|\$\([^)\n]*\)|[^\s'\"&;,<>{}]+)",
            _I,
        ),
        _generic,
    ),
)


def redact(text: str) -> str:
    """Return `text` with every secret we recognise replaced by `[REDACTED:<kind>]`."""
    if not text:
        return text
    for _kind, pattern, build in _RULES:
        text = pattern.sub(build, text)
    return text


_BEGIN_KEY = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_END_KEY = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
# A bare PEM-style body line: an excerpt window may start inside a key block, after BEGIN.
_PEM_BODY = re.compile(r"^\s*[A-Za-z0-9+/]{60,}={0,2}\s*$")


def redact_lines(lines: Iterable[str]) -> list[str]:
    """Redact line by line, keeping the line count (so window line numbers stay right).

    A private-key block spread over several lines is redacted on every line it covers, and a
    bare PEM-style base64 line is redacted even when the block's BEGIN is outside the excerpt.
    """
    out: list[str] = []
    in_key = False
    for line in lines:
        if in_key:
            out.append(_tag("private-key"))
            if _END_KEY.search(line) or not line.strip():
                in_key = False
            continue
        if _BEGIN_KEY.search(line) and not _END_KEY.search(line):
            in_key = True
        elif _PEM_BODY.match(line) and not line.strip().isdigit():
            out.append(_tag("base64-block"))
            continue
        out.append(redact(line))
    return out


def kinds() -> frozenset[str]:
    """The kinds of secret this module recognises (the `<kind>` in `[REDACTED:<kind>]`)."""
    named = {kind for kind, _pattern, _build in _RULES} - {"vendor-token"}
    return frozenset(named | {name.replace("_", "-") for name in _VENDOR.groupindex})
