"""Unit tests of deploy/swarm/swarm.py's pure parts: the Compose model → stack file
adaptation and the TLS secret version. Nothing here talks to Docker."""

from __future__ import annotations

import pytest

from tests.support import load_script

swarm = load_script("deploy/swarm/swarm.py", "wsgistack_swarm_unit")

# What `docker compose config --format json` writes for a proxy like ours (Compose v2.40).
MODEL = {
    "name": "wsgistack-swarm",
    "services": {
        "proxy": {
            "command": None,
            "entrypoint": None,
            "image": "wsgistack-swarm/proxy:latest",
            "ports": [
                {"mode": "host", "target": 8443, "published": "63443", "protocol": "tcp"},
                {"mode": "ingress", "host_ip": "127.0.0.1", "target": 9090, "published": "9090"},
            ],
            "secrets": [
                {"source": "tls_privkey", "target": "/etc/nginx/certs/privkey.pem", "mode": "0400"}
            ],
            "deploy": {"resources": {"limits": {"cpus": 0.25, "memory": "67108864"}}},
            "networks": {"backend": None},
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "tmpfs": ["/tmp:uid=33,gid=33,mode=0700"],
            "volumes": [{"type": "volume", "source": "nginx-log", "target": "/run/nginx-log"}],
        },
        "app": {"image": "wsgistack-swarm/app:latest", "tmpfs": ["/run/metrics", "/tmp:mode=0700"]},
    },
    "networks": {"backend": {"name": "wsgistack-swarm_backend", "driver": "overlay"}},
}


def test_stack_file_drops_what_the_stack_format_rejects():
    stack = swarm.stack_file(MODEL)
    assert "name" not in stack
    proxy = stack["services"]["proxy"]
    assert "command" not in proxy and "entrypoint" not in proxy
    assert proxy["ports"][1] == {"mode": "ingress", "target": 9090, "published": 9090}


def test_stack_file_writes_the_stack_formats_types():
    proxy = swarm.stack_file(MODEL)["services"]["proxy"]
    assert proxy["ports"][0]["published"] == 63443
    assert proxy["deploy"]["resources"]["limits"] == {"cpus": "0.25", "memory": "67108864"}
    assert proxy["secrets"][0]["mode"] == 0o400


def test_stack_file_keeps_everything_else():
    stack = swarm.stack_file(MODEL)
    assert stack["networks"] == MODEL["networks"]
    # A null network entry means "attach with defaults": not a null service key.
    assert stack["services"]["proxy"]["networks"] == {"backend": None}
    assert stack["services"]["proxy"]["image"] == "wsgistack-swarm/proxy:latest"
    # The input is left as it was.
    assert MODEL["services"]["proxy"]["ports"][0]["published"] == "63443"
    assert MODEL["services"]["proxy"]["deploy"]["resources"]["limits"]["cpus"] == 0.25


def test_stack_file_refuses_a_port_range():
    model = {"services": {"web": {"ports": [{"target": 80, "published": "8000-8010"}]}}}
    with pytest.raises(swarm.SwarmError, match="services.web.ports"):
        swarm.stack_file(model)


def test_tls_version_follows_the_pair(tmp_path):
    (tmp_path / "fullchain.pem").write_text("cert")
    (tmp_path / "privkey.pem").write_text("key")
    first = swarm.tls_version(tmp_path)
    assert len(first) == 12 and int(first, 16) >= 0
    assert swarm.tls_version(tmp_path) == first
    (tmp_path / "privkey.pem").write_text("another key")
    assert swarm.tls_version(tmp_path) != first


def test_tls_version_names_a_missing_file(tmp_path):
    (tmp_path / "fullchain.pem").write_text("cert")
    with pytest.raises(swarm.SwarmError, match="TLS_CERT_DIR: can't read .*privkey.pem"):
        swarm.tls_version(tmp_path)


def test_stack_file_mounts_tmpfs_paths_as_swarm_can():
    services = swarm.stack_file(MODEL)["services"]
    assert "tmpfs" not in services["proxy"] and "tmpfs" not in services["app"]
    assert services["proxy"]["volumes"] == [
        {"type": "volume", "source": "nginx-log", "target": "/run/nginx-log"},
        {"type": "tmpfs", "target": "/tmp"},
    ]
    assert services["app"]["volumes"] == [
        {"type": "tmpfs", "target": "/run/metrics"},
        {"type": "tmpfs", "target": "/tmp"},
    ]


def test_stack_file_keeps_the_hardening_swarm_has_and_drops_what_it_has_not():
    proxy = swarm.stack_file(MODEL)["services"]["proxy"]
    assert proxy["read_only"] is True and proxy["cap_drop"] == ["ALL"]
    assert "security_opt" not in proxy


def test_swarm_gaps_name_the_services():
    assert swarm.swarm_gaps(MODEL) == [
        "security_opt (no service option in Swarm): proxy",
        "tmpfs owner and mode (root's, the image's mode): app, proxy",
    ]
    assert swarm.swarm_gaps({"services": {"web": {"tmpfs": ["/tmp"]}}}) == []


def test_pushed_images_replace_the_local_ones_for_app_and_proxy():
    environ = {"APP_IMAGE": "registry.example/team/app:v1.2", "PROXY_IMAGE": ""}
    assert swarm.pushed_image("app", environ) == "registry.example/team/app:v1.2"
    assert swarm.pushed_image("proxy", environ) is None  # empty: the local build
    assert swarm.pushed_image("prometheus", {"PROMETHEUS_IMAGE": "x"}) is None


def _model_with_secrets(folder) -> dict:
    return {
        "services": {
            "app": {
                "volumes": [
                    {"type": "volume", "source": "app-data", "target": "/data"},
                    {"type": "bind", "source": str(folder), "target": "/run/secrets"},
                ]
            },
            "proxy": {},
        },
        "secrets": {"tls_privkey": {"name": "s_tls_privkey_x", "file": "/k"}},
    }


def test_app_secrets_become_swarm_secrets_named_by_their_content(tmp_path):
    (tmp_path / "api_token").write_text("t0ken")
    (tmp_path / "db.password").write_text("pw")
    (tmp_path / ".gitkeep").write_text("")
    model = _model_with_secrets(tmp_path)
    swarm.app_secrets(model, "shop")
    app = model["services"]["app"]
    assert app["volumes"] == [{"type": "volume", "source": "app-data", "target": "/data"}]
    assert [ref["target"] for ref in app["secrets"]] == [
        "/run/secrets/api_token",
        "/run/secrets/db.password",
    ]
    assert {(ref["uid"], ref["mode"]) for ref in app["secrets"]} == {("10001", 0o400)}
    token = model["secrets"]["app_api_token"]
    assert token["file"] == str(tmp_path / "api_token")
    assert token["name"].startswith("shop_app_api_token_") and "tls_privkey" in model["secrets"]
    (tmp_path / "api_token").write_text("rotated")  # a new file is a new secret
    again = _model_with_secrets(tmp_path)
    swarm.app_secrets(again, "shop")
    assert again["secrets"]["app_api_token"]["name"] != token["name"]
    assert again["secrets"]["app_db.password"] == model["secrets"]["app_db.password"]


def test_no_app_secrets_folder_leaves_the_model_alone_and_an_empty_one_drops_the_mount(tmp_path):
    model = {"services": {"app": {"volumes": [{"type": "volume", "target": "/data"}]}}}
    swarm.app_secrets(model, "shop")
    assert model == {"services": {"app": {"volumes": [{"type": "volume", "target": "/data"}]}}}
    empty = _model_with_secrets(tmp_path)
    swarm.app_secrets(empty, "shop")
    assert (
        "secrets" not in empty["services"]["app"] and len(empty["services"]["app"]["volumes"]) == 1
    )


def test_an_app_secret_docker_cannot_name_is_refused_naming_it(tmp_path):
    (tmp_path / "my secret").write_text("x")
    with pytest.raises(swarm.SwarmError, match="APP_SECRETS_DIR: 'my secret'"):
        swarm.app_secrets(_model_with_secrets(tmp_path), "shop")
