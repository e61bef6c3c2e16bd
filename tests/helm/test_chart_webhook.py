"""The injector's Deployment, Service, certificates and webhook configuration."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import PurePosixPath

from cryptography import x509

from sidecar.cli import build_parser
from sidecar.config.models import split_host_port
from sidecar.inject.patch import LABEL_INJECTOR
from tests.helpers.chart import NAMESPACE, Rendered

Render = Callable[[str], Rendered]


def test_webhook_configuration_is_safe_by_default(rendered: Render) -> None:
    config = rendered("webhook").one("MutatingWebhookConfiguration")
    by_path = {hook["clientConfig"]["service"]["path"]: hook for hook in config["webhooks"]}
    assert set(by_path) == {"/inject", "/inject-namespace"}
    for hook in by_path.values():
        assert hook["failurePolicy"] == "Ignore"
        assert hook["sideEffects"] == "None"
        assert hook["rules"] == [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        expressions = hook["namespaceSelector"]["matchExpressions"]
        assert {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["kube-system"],
        } in expressions
        assert hook["objectSelector"] == {
            "matchExpressions": [{"key": LABEL_INJECTOR, "operator": "DoesNotExist"}]
        }
    inject_namespace = by_path["/inject-namespace"]["namespaceSelector"]["matchExpressions"][1]
    inject_pod = by_path["/inject"]["namespaceSelector"]["matchExpressions"][1]
    assert inject_namespace == {
        "key": "model-sidecar.io/inject",
        "operator": "In",
        "values": ["enabled"],
    }
    assert inject_pod == {**inject_namespace, "operator": "NotIn"}


def test_injector_never_injects_itself_and_has_no_api_access(rendered: Render) -> None:
    out = rendered("webhook")
    pod = out.one("Deployment", "injector")["spec"]["template"]
    assert pod["metadata"]["labels"][LABEL_INJECTOR] == "true"
    assert pod["spec"]["automountServiceAccountToken"] is False
    account = out.one("ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    kinds = {doc["kind"] for doc in out.docs}
    assert not kinds & {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def test_injector_command_matches_its_mounts_and_service(rendered: Render) -> None:
    out = rendered("webhook")
    spec = out.one("Deployment", "injector")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "inject-webhook"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for path in (args.tls_cert, args.tls_key, args.injection):
        assert mounts[str(PurePosixPath(path).parent)]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == out.one("Secret")["metadata"]["name"]
    injection = out.one("ConfigMap", "injector")
    assert volumes["injection"]["configMap"]["name"] == injection["metadata"]["name"]
    assert PurePosixPath(args.injection).name in injection["data"]
    (port,) = container["ports"]
    assert split_host_port(args.listen)[1] == port["containerPort"]
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (service_port,) = out.one("Service", "injector")["spec"]["ports"]
    assert (service_port["port"], service_port["targetPort"]) == (443, port["name"])


def test_helm_generated_certificate_names_the_service(rendered: Render) -> None:
    out = rendered("webhook")
    secret = out.one("Secret")
    assert secret["type"] == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    service = out.one("Service", "injector")["metadata"]["name"]
    assert f"{service}.{NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)
    for hook in out.one("MutatingWebhookConfiguration")["webhooks"]:
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]


def test_cert_manager_mode(rendered: Render) -> None:
    out = rendered("webhook-cert-manager")
    certificate = out.one("Certificate")
    service = out.one("Service", "injector")["metadata"]["name"]
    assert f"{service}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"]["name"] == out.one("Issuer")["metadata"]["name"]
    secret_name = out.one("Deployment", "injector")["spec"]["template"]["spec"]["volumes"][0]
    assert secret_name["secret"]["secretName"] == certificate["spec"]["secretName"]
    config = out.one("MutatingWebhookConfiguration")
    annotation = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{NAMESPACE}/{certificate['metadata']['name']}"
    assert all("caBundle" not in hook["clientConfig"] for hook in config["webhooks"])
