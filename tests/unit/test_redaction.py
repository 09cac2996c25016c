"""Redaction: realistic secrets of each kind vanish; the lines a diagnosis needs survive."""

from __future__ import annotations

import pytest

from pipeline_recovery.redaction import kinds, redact, redact_lines

# Realistic-looking but fake credentials (the formats are real; the values are not).
GH_PAT = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
GH_SERVER = "ghs_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GH_FINE = (
    "github_pat_11ABCDEFG0" + "aBcDeFgHiJkLmNoPqRsTuV_wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234"
)
GLPAT = "glpat-" + "xR7bK2mN9pQ4sT6vW8yZ"
NPM = "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PYPI = "pypi-AgEIcHlwaS5vcmcCJGE0ZjY3YjE2LTVmYmItNGJjNi1iZDMxLWQyZGRkMjc1MmJkNwACKlsz"
SLACK_BOT = "xoxb-" + "1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_HOOK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/XxXxXxXxXxXxXxXxXxXxXxXx"
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjaS1ib3QiLCJleHAiOjE3MzAwMDAwMDB9."
    "Qm9ndXNTaWduYXR1cmVGb3JUZXN0c09ubHk"
)
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _gone(secret: str, text: str) -> str:
    out = redact(text)
    assert secret not in out, out
    assert "[REDACTED:" in out
    return out


def test_bearer_token_in_curl_header() -> None:
    line = 'curl -sf -H "Authorization: Bearer 8f3c2a1b9d7e6f5a4b3c2d1e0f9a8b7c" https://api.example.com/v1/deploy'
    out = _gone("8f3c2a1b9d7e6f5a4b3c2d1e0f9a8b7c", line)
    assert "https://api.example.com/v1/deploy" in out


def test_authorization_basic_header_in_debug_dump() -> None:
    out = _gone("dXNlcjpodW50ZXIy", "> Authorization: Basic dXNlcjpodW50ZXIy")
    assert out.startswith("> Authorization: Basic [REDACTED:")


def test_basic_auth_url_in_git_clone() -> None:
    line = (
        "Cloning into 'app'... fatal: unable to access "
        "'https://ci-bot:s3cr3tPa55@git.example.com/team/app.git/': 403"
    )
    out = _gone("s3cr3tPa55", line)
    assert "ci-bot" not in out
    assert "git.example.com/team/app.git" in out
    assert "403" in out


def test_x_access_token_url() -> None:
    _gone(GH_SERVER, f"git push https://x-access-token:{GH_SERVER}@github.com/o/r.git HEAD:main")


def test_aws_access_key_id_and_secret_env() -> None:
    text = f"+ export AWS_ACCESS_KEY_ID={AWS_ID}\n+ export AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"
    out = redact(text)
    assert AWS_ID not in out and AWS_SECRET not in out
    assert "[REDACTED:aws-access-key-id]" in out
    assert "AWS_SECRET_ACCESS_KEY=[REDACTED:" in out


def test_aws_credentials_file_form() -> None:
    text = f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"
    out = redact(text)
    assert AWS_SECRET not in out and AWS_ID not in out


def test_aws_bare_secret_near_aws_context() -> None:
    _gone(AWS_SECRET, f"aws configure set default profile ci {AWS_SECRET}")


def test_git_sha_on_s3_line_survives() -> None:
    sha = "3f2a9c0d5b7e8f1a2c4d6e8f0a1b3c5d7e9f0a2b"
    line = f"upload: dist/app.tgz to s3://artifacts/builds/{sha}/app.tgz"
    assert redact(line) == line


def test_gcp_service_account_json() -> None:
    doc = (
        '{"type": "service_account", "project_id": "ci-prod", '
        '"private_key_id": "4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6", '
        '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n'
        'BKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n", '
        '"client_email": "ci@ci-prod.iam.gserviceaccount.com"}'
    )
    out = redact(doc)
    assert "4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6" not in out
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in out
    assert "ci@ci-prod.iam.gserviceaccount.com" in out  # not a secret; useful for auth errors


def test_azure_connection_string_and_sas_url() -> None:
    conn = (
        "DefaultEndpointsProtocol=https;AccountName=ciartifacts;"
        f"AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net"
    )
    out = _gone(AZURE_KEY, conn)
    assert "AccountName=ciartifacts" in out
    sas = (
        "PUT https://ciartifacts.blob.core.windows.net/builds/app.zip?sv=2022-11-02&ss=b&srt=o"
        "&sp=rwc&se=2025-01-01T00:00:00Z&sig=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA%3D%3D failed: 403"
    )
    out = _gone("Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA%3D%3D", sas)
    assert "failed: 403" in out
    sb = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abcDEF123ghiJKL456mnoPQR789stuVWX0yz1234567="
    _gone("abcDEF123ghiJKL456mnoPQR789stuVWX0yz1234567=", sb)


@pytest.mark.parametrize(
    ("secret", "line"),
    [
        (GH_PAT, f"remote: Invalid username or token. Using {GH_PAT} from GITHUB_TOKEN"),
        (GH_FINE, f"echo {GH_FINE} | gh auth login --with-token"),
        (GH_SERVER, f"::add-mask::{GH_SERVER}"),
        (GLPAT, f'curl --header "PRIVATE-TOKEN: {GLPAT}" https://gitlab.example.com/api/v4/projects'),
        (NPM, f"npm config set //registry.npmjs.org/:_authToken {NPM}"),
        (PYPI, f"twine upload -u __token__ -p {PYPI} dist/*"),
        (SLACK_BOT, f"posting to slack with token {SLACK_BOT}"),
        (SLACK_HOOK, f"curl -X POST -d @msg.json {SLACK_HOOK}"),
        (JWT, f"kubectl --token={JWT} get pods"),
        (JWT, f"Authorization: Bearer {JWT}"),
    ],
)
def test_vendor_tokens(secret: str, line: str) -> None:
    _gone(secret, line)


def test_npmrc_auth_token_line() -> None:
    uuid = "4d9c3b2a-1f0e-4d8c-9b7a-6f5e4d3c2b1a"
    out = _gone(uuid, f"//npm.pkg.github.com/:_authToken={uuid}")
    assert out.startswith("//npm.pkg.github.com/:_authToken=")


def test_private_key_block_multiline() -> None:
    text = (
        "Writing deploy key\n"
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACB0ZXN0a2V5dGVzdGtleXRlc3RrZXl0ZXN0a2V5dGVzdAAAAJg=\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
        "git@github.com: Permission denied (publickey).\n"
    )
    out = redact(text)
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" not in out
    assert "QyNTUxOQAAACB0ZXN0a2V5" not in out
    assert "git@github.com: Permission denied (publickey)." in out
    lines = redact_lines(text.splitlines())
    assert len(lines) == len(text.splitlines())
    assert not any("QyNTUxOQ" in line for line in lines)
    assert lines[-1] == "git@github.com: Permission denied (publickey)."


def test_excerpt_starting_inside_a_key_block() -> None:
    window = [
        "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM0aXvTgZ8hWqPp1nL5sN2kQe4rT7uYwXzA",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW==",
        "-----END RSA PRIVATE KEY-----",
        "ssh: handshake failed: Permission denied (publickey)",
    ]
    out = redact_lines(window)
    assert not any("MIIEpAIBAAKC" in line or "b3BlbnNzaC1y" in line for line in out)
    assert out[-1] == window[-1]


def test_truncated_private_key_block_is_still_redacted() -> None:
    text = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM\n"
    assert "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM" not in redact(text)
    assert all("MIIEp" not in line for line in redact_lines(text.splitlines()))


@pytest.mark.parametrize(
    ("secret", "line"),
    [
        ("hunter2!x", "DB_PASSWORD=hunter2!x ./migrate.sh"),
        ("Sup3rS3cret", "mysql -h db --passwd=Sup3rS3cret"),
        ("sk-live-9f8e7d6c5b4a", "STRIPE_SECRET=sk-live-9f8e7d6c5b4a"),
        ("c0ffee1234abcd", "retrying with token=c0ffee1234abcd"),
        ("a1b2c3d4e5f6a7b8", "export SENDGRID_API_KEY=a1b2c3d4e5f6a7b8"),
        ("Zz9Yy8Xx7Ww6", "GET /v2/search?q=x&apikey=Zz9Yy8Xx7Ww6 HTTP/1.1"),
        ("my very secret pw", 'config: {"password": "my very secret pw", "user": "ci"}'),
        ("yaml-pass-123", "    password: yaml-pass-123"),
        ("ruby-secret-99", "  'client_secret' => 'ruby-secret-99',"),
        ("tok-cli-4455", "deployctl --token tok-cli-4455 --env prod"),
    ],
)
def test_key_value_secrets(secret: str, line: str) -> None:
    _gone(secret, line)


def test_docker_auths_json() -> None:
    cfg = (
        '{"auths": {"registry.example.com": {"auth": "Y2ktYm90OmRvY2tlci1wYXNzd29yZC0xMjM=", '
        '"identitytoken": "dckr_idtok_51f0aa"}}}'
    )
    out = redact(cfg)
    assert "Y2ktYm90OmRvY2tlci1wYXNzd29yZC0xMjM=" not in out
    assert "dckr_idtok_51f0aa" not in out
    assert "registry.example.com" in out


def test_placeholders_are_left_alone() -> None:
    for line in (
        "password: ${DB_PASSWORD}",
        'token: "$(cat /var/run/secrets/token)"',
        "api_key=null",
    ):
        assert redact(line) == line


def test_shell_errors_about_unset_secrets_stay_readable() -> None:
    for line in (
        "deploy.sh: line 12: DEPLOY_TOKEN: parameter null or not set",
        "/bin/sh: 1: NPM_TOKEN: parameter not set",
        "script.sh: line 3: API_TOKEN: unbound variable",
    ):
        assert redact(line) == line
    assert "s3cr3t-value" not in redact("API_TOKEN: s3cr3t-value unbound variable")


def test_every_kind_has_a_rule_and_no_double_tagging() -> None:
    assert {
        "bearer-token", "basic-auth-url", "aws-access-key-id", "aws-secret-access-key",
        "gcp-service-account", "azure-connection-string", "azure-sas", "github-token",
        "gitlab-token", "npm-token", "pypi-token", "slack-token", "slack-webhook", "jwt",
        "private-key", "secret", "docker-auth", "authorization-header",
    } <= kinds()
    out = redact(f"Authorization: Bearer {JWT}")
    assert out.count("[REDACTED:") == 1
    assert redact(out) == out  # idempotent


DIAGNOSTIC_LINES = [
    "npm ERR! code ENOSPC",
    "npm ERR! syscall write",
    "npm ERR! errno -28",
    "npm ERR! nospc ENOSPC: no space left on device, write",
    "Error: Cannot find module 'express'",
    "java.lang.OutOfMemoryError: Java heap space",
    "E   ModuleNotFoundError: No module named 'requests'",
    "FAILED tests/test_api.py::test_login - AssertionError: assert 401 == 200",
    "error TS2304: Cannot find name 'process'.",
    "fatal: unable to access 'https://github.com/o/r.git/': Could not resolve host: github.com",
    "Error response from daemon: pull access denied for app, repository does not exist",
    "npm ERR! code E401",
    "npm ERR! Unable to authenticate, need: Basic realm=\"GitHub Package Registry\"",
    "git@github.com: Permission denied (publickey).",
    "SyntaxError: Unexpected token < in JSON at position 0",
    'Error: secret "db-password" not found',
    "   secretKeyRef:",
    "OOMKilled: container exceeded its memory limit 512Mi (exit code 137)",
    "--- FAIL: TestTokenRefresh (0.01s)",
    "error[E0425]: cannot find value `token_count` in this scope",
    "Read timed out. (read timeout=15)",
    "toomanyrequests: You have reached your pull rate limit.",
    "cp: cannot create regular file '/cache/out.bin': Permission denied",
    "max_tokens: 800",
]


def test_redacted_excerpt_keeps_the_lines_a_diagnosis_needs() -> None:
    excerpt = [
        "Step 4/9 : RUN npm ci",
        f"+ npm config set //registry.npmjs.org/:_authToken={NPM}",
        f"+ export AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
        *DIAGNOSTIC_LINES,
        f"+ curl -H 'Authorization: Bearer {JWT}' https://hooks.example.com",
    ]
    out = redact_lines(excerpt)
    assert len(out) == len(excerpt)
    for line in DIAGNOSTIC_LINES:
        assert line in out, line
    joined = "\n".join(out)
    for secret in (NPM, AWS_SECRET, JWT):
        assert secret not in joined


def test_redact_is_fast_enough_on_a_big_log() -> None:
    # Not a timing assertion: proves a 1 MB log of ordinary lines round-trips unchanged.
    text = "\n".join(f"[{i:06d}] compiling mod_{i}.c -> build/mod_{i}.o" for i in range(20000))
    assert redact(text) == text
    assert redact("") == ""
    assert redact_lines([]) == []
