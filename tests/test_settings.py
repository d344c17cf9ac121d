"""Settings from the environment, and the development auth token."""

from pathlib import Path

from voice_agent.settings import Settings


def test_environment_names_are_the_conventional_ones(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VOICE_AGENT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://agent.example.com")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
    s = Settings()
    assert s.data_dir == tmp_path and s.resolved_database_url() == "postgresql+psycopg://u@h/db"
    assert s.public_base_url == "https://agent.example.com" and s.auth_token() == "tok"


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "d")
    assert s.resolved_database_url() == f"sqlite:///{(tmp_path / 'd').resolve()}/voice-agent.db"


def test_without_a_token_a_private_development_token_is_made_once(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).auth_token()
    assert len(first) == 32
    path = tmp_path / "twilio-dev-auth-token"
    assert path.stat().st_mode & 0o077 == 0, "readable by others"
    assert Settings(data_dir=tmp_path).auth_token() == first
