"""The `reclight` command.

Listing commands (`models`, `plugins`, `datasets`) import neither torch nor Lightning, so they
answer at once. `fit` and `test` pass their flags to the Lightning-style parser in
:mod:`reclight.runner`. Library errors (:class:`reclight.errors.RecLightError`) become one line
on stderr and exit status 2, never a traceback; plugin problems recorded while loading (see
:mod:`reclight.plugins` and :mod:`reclight.registry`) become one ``reclight: warning:`` line each
before every command.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

import click

from reclight import __version__
from reclight.errors import RecLightError, RunInterrupted
from reclight.plugins import ENV_LOAD, GROUP, get_plugins
from reclight.registry import get_registry

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True,
                "help_option_names": []}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reclight")
def cli() -> None:
    """Recommender models as plugins on PyTorch Lightning.

    \b
    reclight fit --model mf                       train on the embedded synthetic data
    reclight fit --model mf --data ml-100k --data.split u1
    reclight test --ckpt runs/mf/version_0/checkpoints/last.ckpt
    reclight models                               what is installed
    """


@cli.command(context_settings=PASS_THROUGH)
@click.pass_context
def fit(ctx: click.Context) -> None:
    """Train a model and test it: --model NAME [--data SRC] [--data.* --model.* --trainer.*].

    Run `reclight fit --model NAME --help` for every flag of that model.
    """
    from reclight.runner import run_fit

    run_fit(list(ctx.args))


@cli.command(context_settings=PASS_THROUGH)
@click.option("--ckpt", required=True, help="checkpoint written by `reclight fit`")
@click.pass_context
def test(ctx: click.Context, ckpt: str) -> None:
    """Re-evaluate a checkpoint on its data (override with --data.* flags)."""
    from reclight.runner import run_test

    run_test(ckpt, list(ctx.args))


@cli.command()
@click.option("--ckpt", required=True, help="checkpoint written by `reclight fit`")
@click.option("--input", "input_path", required=True, help="CSV/TSV of user,item raw ids")
@click.option("--output", required=True, help="CSV to write: user,item,prediction")
@click.option("--overwrite", is_flag=True, help="replace --output if it exists")
def predict(ckpt: str, input_path: str, output: str, overwrite: bool) -> None:
    """Predict ratings for (user, item) pairs given as raw ids."""
    from reclight.serving import predict_pairs
    from reclight.tables import check_output, write_table

    check_output(output, overwrite)
    frame, unseen = predict_pairs(ckpt, input_path)
    write_table(frame, output, overwrite)
    _warn_unseen(unseen, len(frame), "pairs")
    click.echo(f"wrote {len(frame)} predictions to {output}")


@cli.command()
@click.option("--ckpt", required=True, help="checkpoint written by `reclight fit`")
@click.option("--users", required=True,
              help="comma-separated raw user ids (e.g. 1,2,3), or 'all' for every user")
@click.option("-k", "k", default=10, show_default=True, help="items per user")
@click.option("--output", default=None,
              help="file to write (user,rank,item,score): .csv or .parquet; stdout if absent")
@click.option("--include-seen", is_flag=True, help="also recommend items rated in training")
@click.option("--overwrite", is_flag=True, help="replace --output if it exists")
def recommend(ckpt: str, users: str, k: int, output: str | None, include_seen: bool,
              overwrite: bool) -> None:
    """Top-k items for users given as raw ids; items seen in training are excluded by default.

    The score column is, for a rating model, the predicted rating clipped to the data's rating
    range; for an implicit-feedback model, its ranking score (not a rating). A line on stderr
    says which.

    With --output the users are ranked in batches and written as they go (bounded memory):
    `--users all --output recs.parquet` ranks every user of the model.
    """
    from reclight.serving import recommend_to_file, recommend_users
    from reclight.streaming import output_format
    from reclight.tables import check_output, parse_user_list

    if k < 1:
        raise click.BadParameter(f"k={k}; it must be >= 1", param_hint="-k")
    everyone = users.strip().lower() == "all"
    if output:
        output_format(output)
        check_output(output, overwrite)
    elif everyone:
        raise click.UsageError("--users all writes a file; add --output recs.csv (or .parquet)")
    wanted = None if everyone else parse_user_list(users)
    if output:
        rows, unknown = recommend_to_file(ckpt, wanted, k, output, not include_seen)
        _warn_unknown_users(unknown, len(wanted or []))
        from reclight.checkpoints import load_model
        from reclight.serving import score_meaning

        click.echo(f"score: {score_meaning(load_model(ckpt))}", err=True)
        click.echo(f"wrote {rows} recommendations to {output}")
        return
    frame, unknown = recommend_users(ckpt, wanted, k, not include_seen)
    _warn_unknown_users(unknown, len(wanted))
    click.echo(f"score: {frame.attrs.get('score', 'the model score')}", err=True)
    click.echo(frame.to_csv(index=False), nl=False)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--models", "names", default=None, help="comma-separated model names, e.g. mf,autorec")
@click.option("--folds", default=None, help="splits to run each model on in turn, e.g. u1,u2,u3,u4,u5")
@click.option("--overrides", default=None, help="YAML file: per-model settings, e.g. 'deeprec: "
              "{trainer.max_epochs: 30}'")
@click.option("--output", default=None, help="folder for results.csv, summary.csv, rmse_vs_time.png")
@click.option("--overwrite", is_flag=True, help="replace the results in --output")
@click.option("--replot", default=None, metavar="DIR", help="only redraw DIR/rmse_vs_time.png")
@click.argument("flags", nargs=-1, type=click.UNPROCESSED)
def compare(names: str | None, folds: str | None, overrides: str | None, output: str | None,
            overwrite: bool, replot: str | None, flags: tuple[str, ...]) -> None:
    """Fit several models on the same data (and folds): learning curves, a summary, a picture.

    Flags after the options (--data ..., --data.val_size ..., --trainer.max_epochs ...) apply
    to every model. Everything is checked before the first model trains.
    """
    from reclight.compare import compare_models, plan_compare
    from reclight.compare import replot as redraw

    if replot is not None:
        redraw(replot, click.echo)
        return
    if not names:
        raise click.UsageError("compare needs --models, e.g. --models mf,autorec")
    plan = plan_compare(names, list(flags), folds, overrides, output, overwrite)
    compare_models(plan, click.echo, lambda line: click.echo(line, err=True))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def models(as_json: bool) -> None:
    """List installed models with their plugin distribution and version.

    A name that two plugins claim is listed as a conflict (who claims it, and the fix); in
    --json such rows have "status": "conflict", an "error" and "claimed_by" (the claiming
    models), and usable models have "status": "ok".
    """
    registry = get_registry()
    specs = [registry.specs[name] for name in registry.names()]
    if as_json:
        rows = [{**s.as_dict(), "status": "ok"} for s in specs]
        rows += [{"name": key, "status": "conflict", "error": registry.conflict_message(key),
                  "claimed_by": [s.as_dict() for s in claims]}
                 for key, claims in sorted(registry.conflicts.items())]
        click.echo(json.dumps(rows, indent=2))
        return
    if not specs and not registry.conflicts:
        click.echo("no models installed; pip install a reclight plugin such as reclight-mf")
        return
    width = max(len(name) for name in [*registry.names(), *registry.conflicts])
    for s in specs:
        aliases = f" (aliases: {', '.join(s.aliases)})" if s.aliases else ""
        click.echo(f"{s.name:<{width}}  {s.dist} {s.version}  {s.description}{aliases}")
    for key in sorted(registry.conflicts):
        click.echo(f"{key:<{width}}  conflict: {registry.conflict_message(key)}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def plugins(as_json: bool) -> None:
    """List plugins: version, hooks and models of each, and why any is not working.

    \b
    status: loaded    working
            empty     imported, implements no hook (often a missing @reclight.hookimpl)
            failed    import or register_models raised; its models are missing
            clash     two distributions use its entry-point name; neither loaded
            conflict  loaded, but some of its model names are claimed by another plugin too
    --json prints a list of objects: name, dist, version, status, hooks, models, error.
    """
    registry = get_registry()
    rows = sorted(registry.plugin_rows(), key=lambda row: (row["name"], row["dist"]))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        setting = os.environ.get(ENV_LOAD)
        click.echo("no plugins installed" if setting is None
                   else f"no plugins loaded ({ENV_LOAD}={setting!r})")
        return
    name_w = max(len(row["name"]) for row in rows)
    dist_w = max(len(f"{row['dist']} {row['version']}".strip()) for row in rows)
    for row in rows:
        dist = f"{row['dist']} {row['version']}".strip()
        detail = [f"hooks: {', '.join(row['hooks'])}"] if row["hooks"] else []
        models = [_with_aliases(registry.specs[name]) for name in row["models"]]
        detail += [f"models: {', '.join(models)}"] if models else []
        detail += [row["error"]] if row["error"] else []
        click.echo(f"{row['name']:<{name_w}}  {dist:<{dist_w}}  {row['status']:<8}  "
                   f"{'; '.join(detail)}".rstrip())


PIP_PASS_THROUGH = {"ignore_unknown_options": True}


@cli.command(context_settings=PIP_PASS_THROUGH)
@click.argument("pip_args", nargs=-1, required=True, type=click.UNPROCESSED,
                metavar="NAME_OR_PATH... [PIP FLAGS]")
def install(pip_args: tuple[str, ...]) -> None:
    """Install plugins into reclight's own environment (`python -m pip install`, pip's flags
    passed through; nothing the plugin supplies is imported).

    \b
    reclight install reclight-ease               from the package index
    reclight install ./reclight-ease             from a folder (-e for an editable install)
    reclight install -e ./reclight-ease --no-deps
    """
    from reclight import install as installer

    code, changed = installer.install(pip_args)
    _after_pip("install", code, changed, "installed plugin")
    if code == 0 and not changed:
        click.echo("reclight: warning: pip finished but no new reclight plugin entry point "
                   f"appeared (entry-point group '{GROUP}'); check that "
                   f"{' '.join(a for a in pip_args if not a.startswith('-'))} is a reclight "
                   "plugin or was already installed", err=True)


@cli.command(context_settings=PIP_PASS_THROUGH)
@click.argument("pip_args", nargs=-1, required=True, type=click.UNPROCESSED,
                metavar="NAME... [PIP FLAGS]")
def uninstall(pip_args: tuple[str, ...]) -> None:
    """Uninstall plugins by entry-point or distribution name (`python -m pip uninstall`; pass
    -y to skip pip's question).

    \b
    reclight uninstall ease -y                   the plugin whose entry point is `ease`
    reclight uninstall reclight-ease -y          the same, by distribution
    """
    from reclight import install as installer

    code, removed = installer.uninstall(pip_args)
    _after_pip("uninstall", code, removed, "removed plugin")


def _after_pip(action: str, code: int, plugins: list[str], what: str) -> None:
    for line in plugins:
        click.echo(f"{what} {line}")
    if code:
        click.echo(f"reclight: error: pip {action} failed (exit status {code}); see pip's "
                   "messages above", err=True)
        sys.exit(code)


@cli.command()
def datasets() -> None:
    """List the built-in data sets and where each would be read from."""
    from reclight.data.sources import BUILTIN_DATASETS, dataset_locations

    for name in BUILTIN_DATASETS:
        click.echo(f"{name:<10} {dataset_locations(name)}")


def _with_aliases(spec: Any) -> str:
    return f"{spec.name} ({', '.join(spec.aliases)})" if spec.aliases else spec.name


def _warn_unseen(unseen: int, total: int, what: str) -> None:
    if unseen:
        click.echo(f"reclight: warning: {unseen} of {total} {what} involve ids unseen in training; "
                   "they got the baseline fallback (global mean + known biases)", err=True)


def _warn_unknown_users(unknown: list[str], total: int, shown: int = 20) -> None:
    if unknown:
        names = ", ".join(unknown[:shown]) + (f" and {len(unknown) - shown} more"
                                              if len(unknown) > shown else "")
        click.echo(f"reclight: warning: {len(unknown)} of {total} users are unknown to the model "
                   f"(not in its training data): {names}; they got the fallback ranking "
                   "(baseline or most popular items)", err=True)


def _report_plugin_problems() -> None:
    """One warning line per plugin problem, before every command, so none goes unnoticed."""
    plugin_set = get_plugins()
    for line in dict.fromkeys([*plugin_set.warnings, *get_registry().warnings()]):
        click.echo(f"reclight: warning: {line}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    from reclight.console import show_warning

    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.showwarning = show_warning  # one `reclight: warning:` line, no source path
    try:
        get_plugins().add_commands(cli)
        _report_plugin_problems()
        code: Any = cli.main(args=argv, prog_name="reclight", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("reclight: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"reclight: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except RunInterrupted as exc:
        click.echo(f"reclight: {exc}", err=True)
        sys.exit(exc.exit_code)
    except RecLightError as exc:
        click.echo(f"reclight: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("reclight: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
