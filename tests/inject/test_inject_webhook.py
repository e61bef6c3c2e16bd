"""The injector over HTTPS: real AdmissionReviews in, JSON patches applied to real pod specs."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import helm_python as helm
import pytest
import trustme

from sidecar.inject.patch import InjectionTemplate
from sidecar.inject.webhook import CertificateReloader, WebhookServer, tls_context
from tests.helpers.chart import CHART_DIR, NAMESPACE, render
from tests.helpers.pods import admission_review, app_container, env_of, names, patched, pod

OPT_IN = {"model-sidecar.io/inject": "true"}
OPENAI = "http://127.0.0.1:8788/v1"
ANTHROPIC = "http://127.0.0.1:8788"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _write_cert(ca: trustme.CA, directory: Path, *hosts: str) -> tuple[Path, Path]:
    cert = ca.issue_cert(*hosts)
    cert_file, key_file = directory / "tls.crt", directory / "tls.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


@pytest.fixture
async def webhook(
    ca: trustme.CA, native_template: InjectionTemplate, tmp_path: Path
) -> AsyncIterator[WebhookServer]:
    server = WebhookServer(native_template, tls_context(*_write_cert(ca, tmp_path, "127.0.0.1")))
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


@pytest.fixture
async def client(ca: trustme.CA) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


async def _review(
    client: aiohttp.ClientSession, url: str, obj: dict[str, Any], namespace: str = "shop"
) -> dict[str, Any]:
    review = admission_review(obj, namespace)
    async with client.post(url, json=review) as response:
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == review["request"]["uid"]
    return answer


async def test_plain_pod_gets_the_native_sidecar(
    webhook: WebhookServer, client: aiohttp.ClientSession
) -> None:
    obj = pod(annotations=OPT_IN)
    result = patched(obj, await _review(client, f"{webhook.url}/inject", obj))
    assert names(result["spec"]["initContainers"]) == ["model-sidecar"]
    assert names(result["spec"]["containers"]) == ["app"]
    assert env_of(result["spec"]["containers"][0]) == {
        "OPENAI_BASE_URL": OPENAI,
        "ANTHROPIC_BASE_URL": ANTHROPIC,
    }
    assert "model-sidecar-config" in names(result["spec"]["volumes"])


async def test_already_injected_pod_is_left_alone(
    webhook: WebhookServer, client: aiohttp.ClientSession
) -> None:
    once = patched(
        pod(annotations=OPT_IN),
        await _review(client, f"{webhook.url}/inject", pod(annotations=OPT_IN)),
    )
    answer = await _review(client, f"{webhook.url}/inject-namespace", once)
    assert "patch" not in answer["response"]
    assert names(patched(once, answer)["spec"]["initContainers"]) == ["model-sidecar"]


@pytest.mark.parametrize(
    ("path", "annotations", "namespace"),
    [
        ("/inject-namespace", {"model-sidecar.io/inject": "false"}, "shop"),  # opted out
        ("/inject", None, "shop"),  # not opted in
        ("/inject", OPT_IN, "kube-system"),  # never kube-system
    ],
)
async def test_pods_that_must_not_change(
    webhook: WebhookServer,
    client: aiohttp.ClientSession,
    path: str,
    annotations: dict[str, str] | None,
    namespace: str,
) -> None:
    obj = pod(annotations=annotations)
    answer = await _review(client, f"{webhook.url}{path}", obj, namespace)
    assert answer["response"] == {"uid": answer["response"]["uid"], "allowed": True}
    assert patched(obj, answer) == obj


async def test_app_keeps_its_own_base_url(
    webhook: WebhookServer, client: aiohttp.ClientSession
) -> None:
    own = {"OPENAI_BASE_URL": "https://llm-gateway.internal/v1", "LOG_LEVEL": "info"}
    obj = pod(app_container(env=own), annotations=OPT_IN)
    result = patched(obj, await _review(client, f"{webhook.url}/inject", obj))
    assert env_of(result["spec"]["containers"][0]) == {**own, "ANTHROPIC_BASE_URL": ANTHROPIC}


async def test_multi_container_pod_in_a_labelled_namespace(
    webhook: WebhookServer, client: aiohttp.ClientSession
) -> None:
    warmup = {"name": "warmup", "image": "registry.example.com/warmup:1"}
    obj = pod(
        app_container("api"),
        app_container("worker", env={"ANTHROPIC_BASE_URL": "http://claude-proxy:8080"}),
        init_containers=[warmup],
    )
    result = patched(obj, await _review(client, f"{webhook.url}/inject-namespace", obj))
    spec = result["spec"]
    assert names(spec["initContainers"]) == ["model-sidecar", "warmup"]
    assert names(spec["containers"]) == ["api", "worker"]
    assert env_of(spec["containers"][0]) == {
        "OPENAI_BASE_URL": OPENAI,
        "ANTHROPIC_BASE_URL": ANTHROPIC,
    }
    assert env_of(spec["containers"][1]) == {
        "ANTHROPIC_BASE_URL": "http://claude-proxy:8080",
        "OPENAI_BASE_URL": OPENAI,
    }


async def test_bad_requests_are_refused_and_health_answers(
    webhook: WebhookServer, client: aiohttp.ClientSession
) -> None:
    for body in (b"not json", b'{"kind": "AdmissionReview"}', b"[]"):
        async with client.post(f"{webhook.url}/inject", data=body) as response:
            assert response.status == 400
    async with client.get(f"{webhook.url}/healthz") as response:
        assert response.status == 200


async def test_chart_certificates_are_trusted_the_way_the_api_server_checks_them(
    native_template: InjectionTemplate, tmp_path: Path
) -> None:
    """Serve with the Helm-generated Secret; connect trusting only the caBundle, by service name."""
    helm.disable_logging()
    with helm.Chart.load(CHART_DIR) as chart:
        out = render(chart, {"webhook": {"enabled": True}})
    secret = out.one("Secret", "injector")["data"]
    (entry, _) = out.one("MutatingWebhookConfiguration")["webhooks"]
    for key in ("tls.crt", "tls.key"):
        (tmp_path / key).write_bytes(base64.b64decode(secret[key]))
    server = WebhookServer(native_template, tls_context(tmp_path / "tls.crt", tmp_path / "tls.key"))
    await server.start("127.0.0.1", 0)
    try:
        trust = ssl.create_default_context(
            cadata=base64.b64decode(entry["clientConfig"]["caBundle"]).decode()
        )
        service = entry["clientConfig"]["service"]
        hostname = f"{service['name']}.{service['namespace']}.svc"
        assert service["namespace"] == NAMESPACE
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"{server.url}/healthz", ssl=trust, server_hostname=hostname
            ) as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(f"{server.url}/healthz", ssl=trust, server_hostname="evil.svc")
    finally:
        await server.stop()


async def test_renewed_certificate_is_served_without_a_restart(
    native_template: InjectionTemplate, tmp_path: Path
) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    cert_file, key_file = _write_cert(old_ca, tmp_path, "127.0.0.1")
    context = tls_context(cert_file, key_file)
    reloader = CertificateReloader(context, cert_file, key_file)
    server = WebhookServer(native_template, context)
    await server.start("127.0.0.1", 0)
    try:
        trust_new = ssl.create_default_context()
        new_ca.configure_trust(trust_new)
        assert reloader.check() is False
        _write_cert(new_ca, tmp_path, "127.0.0.1")
        stamp = os.stat(cert_file).st_mtime + 5  # renewals land seconds apart
        os.utime(cert_file, (stamp, stamp))
        assert reloader.check() is True
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/healthz", ssl=trust_new) as response:
                assert response.status == 200
    finally:
        await server.stop()


async def test_command_line_serves_the_chart_injection(
    ca: trustme.CA, injection_files: dict[str, str], tmp_path: Path, client: aiohttp.ClientSession
) -> None:
    cert_file, key_file = _write_cert(ca, tmp_path, "127.0.0.1")
    injection = tmp_path / "injection.json"
    injection.write_text(injection_files["classic"])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar.cli", "inject-webhook", "--listen", "127.0.0.1:0",
        "--tls-cert", str(cert_file), "--tls-key", str(key_file), "--injection", str(injection),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert "listening on https://127.0.0.1:" in line, line
        url = line.rsplit(" ", 1)[1].strip()
        obj = pod(annotations=OPT_IN)
        result = patched(obj, await _review(client, f"{url}/inject", obj))
        assert names(result["spec"]["containers"]) == ["app", "model-sidecar"]
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
