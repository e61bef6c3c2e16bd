"""Code the tests share, one module per job. Tests import it from here, never from a conftest;
conftest.py files hold only fixtures (and autouse checks), which call into these modules.

    simulator       the simulated provider served on a loopback port
    sidecar         sidecars in this process, configured to call the simulator
    serve           `model-sidecar serve` as a real subprocess
    sdk             official SDK clients carrying the canary API key
    bedrock         boto3 bedrock-runtime clients; raw SigV4-signed requests (botocore's signer)
    aws             the sidecar's AWS environment; a container credentials endpoint (Pod Identity)
    records         a sink that keeps CallRecords; a finished record with every field known
    logs            capturing what the sidecar logs (the autouse credential-leak check)
    ports           loopback ports nothing listens on
    addresses       an address of this machine that is not loopback
    tls             a self-signed certificate (an upstream the sidecar must not trust)
    metrics         scraping a sidecar's /metrics and summing its samples
    prometheus      a real Prometheus process scraping given targets
    promtool        promtool as the alert tests run it
    otlp            real OTLP receivers of traces and metrics (gRPC and HTTP/protobuf)
    known_calls     a fixed set of finished calls; /metrics text without what varies per run
    semconv         the three convention modes; reading /metrics families per mode
    wire            feeding wire bytes to the protocol parsers in awkward pieces
    openai_streams  OpenAI streams exactly as the API sends them
    experiments     simulated models and experiment configs
    probe           `model-sidecar probe` run in this process
    chart           rendering the Helm chart and validating what it renders
    pods            sample pods and AdmissionReview requests
    grafana         what Grafana does to a dashboard's queries, emulated
    traffic         one wave of mixed traffic for the dashboard tests
    realtime        Realtime sessions: SDK turns, raw WebSocket frames, a raw upstream
    providers       every provider's official client at a sidecar with every upstream simulated
    browser         headless Chromium (Debian's) through Playwright; its request log; artifacts
"""
