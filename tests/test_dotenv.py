"""`make up` writes .env from .env.example, with fresh secrets, once."""

from lab.settings import ROOT, read_dotenv
from lab.stack import dotenv


def test_fills_every_empty_secret_and_the_admin_token(tmp_path, capsys):
    target = tmp_path / ".env"
    assert dotenv.create(ROOT / ".env.example", target) == 0
    example, written = read_dotenv(ROOT / ".env.example"), read_dotenv(target)
    assert set(written) == set(example)
    for name in dotenv.GENERATED:
        assert example[name] == "", f"{name} must stay empty in .env.example"
        assert len(written[name]) >= 24, name
    assert len({written[name] for name in dotenv.GENERATED}) == len(dotenv.GENERATED)
    assert {k: v for k, v in written.items() if k not in dotenv.GENERATED} == {
        k: v for k, v in example.items() if k not in dotenv.GENERATED
    }
    assert "GRAFANA_ADMIN_PASSWORD" in capsys.readouterr().out


def test_an_existing_env_is_kept(tmp_path, capsys):
    target = tmp_path / ".env"
    target.write_text("GRAFANA_ADMIN_PASSWORD=mine\n")
    dotenv.create(ROOT / ".env.example", target)
    assert target.read_text() == "GRAFANA_ADMIN_PASSWORD=mine\n"
    assert "kept" in capsys.readouterr().out
