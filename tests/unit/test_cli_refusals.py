"""Bad arguments and bad configuration: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gnosis.cli import main

BAD_ARGUMENTS = [
    (["backtest", "--synthetic", "--bars", "0"], "--bars: must be at least 1"),
    (["backtest", "--synthetic", "--bars", "-5"], "--bars: must be at least 1"),
    (["bench", "--bars", "0"], "--bars: must be at least 1"),
    (["run", "--speed", "0"], "--speed: must be a finite number above 0"),
    (["run", "--speed", "-1"], "--speed: must be a finite number above 0"),
    (["run", "--speed", "nan"], "--speed: must be a finite number above 0"),
    (["run", "--speed", "inf"], "--speed: must be a finite number above 0"),
    (["run", "--max-bars", "-3"], "--max-bars: must be at least 1"),
    (["run", "--warmup-days", "-1"], "--warmup-days: must be 0 or more"),
    (["run", "--symbols", ","], "give at least one symbol"),
    (["run", "--symbols", "SPY;rm"], "is not a ticker symbol"),
    (["backtest", "--synthetic", "--decisions", "/no/such/folder/d.csv"],
     "folder /no/such/folder does not exist"),
]

BAD_SETTINGS = [
    ({"GNOSIS_RISKY": "1"}, "unknown setting(s): GNOSIS_RISKY"),
    ({"GNOSIS_RISK__MAX_POSITION": "2"}, "unknown setting(s): GNOSIS_RISK__MAX_POSITION"),
    ({"GNOSIS_RISK": "abc"}, "invalid configuration"),
    ({"GNOSIS_MARKET__SYMBOLS": "[]"}, "market.symbols"),
    ({"GNOSIS_MARKET__START": "garbage"}, "market.start"),
    ({"GNOSIS_RISK__REWARD_RISK": "inf"}, "risk.reward_risk: Input should be a finite number"),
    ({"GNOSIS_INITIAL_CASH": "inf"}, "initial_cash: Input should be a finite number"),
    ({"GNOSIS_INITIAL_CASH": "nan"}, "initial_cash: Input should be a finite number"),
    ({"GNOSIS_RISK__MAX_POSITIONS": "x"}, "risk.max_positions"),
]


def one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    out = capsys.readouterr()
    assert code == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert "Traceback" not in out.err
    return lines[0]


@pytest.mark.parametrize(("argv", "expected"), BAD_ARGUMENTS)
def test_bad_arguments_are_one_line(argv: list[str], expected: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        code = main(argv)
        raise SystemExit(code)
    assert expected in one_line_error(capsys, int(exited.value.code or 0))


@pytest.mark.parametrize(("env", "expected"), BAD_SETTINGS)
def test_bad_settings_are_one_line(env: dict[str, str], expected: str,
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(["backtest", "--synthetic", "--bars", "100", "--json", "--no-progress"])
    assert expected in one_line_error(capsys, code)


def test_a_typo_in_dotenv_is_refused_but_other_programs_keys_are_not(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://db\nGNOSIS_RISK__MAX_POSITIONS=4\n")
    assert main(["backtest", "--synthetic", "--bars", "100", "--json", "--no-progress"]) == 0
    capsys.readouterr()
    (tmp_path / ".env").write_text("GNOSIS_RISK__BOGUS=1\n")
    code = main(["backtest", "--synthetic", "--bars", "100", "--json", "--no-progress"])
    assert "GNOSIS_RISK__BOGUS (in the .env)" in one_line_error(capsys, code)


def test_json_output_never_holds_nan_or_infinity(capsys: pytest.CaptureFixture[str]) -> None:
    """Sharpe is None with under five sessions, and nothing else may be NaN or infinite."""
    assert main(["backtest", "--synthetic", "--bars", "300", "--json", "--no-progress"]) == 0
    text = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert result["sharpe"] is None
