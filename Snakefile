# fewlabels: learning MNIST from few labels, reproduced end to end.
# Usage: snakemake --cores all [--configfile presets/quick.yaml]   (see README.md)
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


# The bare command's preset, paper, is the study: the compare preset's schedules, the seeds preset's claims
# and presets/paper.yaml's grid, layered over config.yaml (fewlabels.presets.PAPER_LAYERS; the command line's
# config still wins). Other presets name themselves and keep config.yaml as their only base.
if config["preset"] == "paper":

    configfile: "presets/compare.yaml"
    configfile: "presets/seeds.yaml"
    configfile: "presets/paper.yaml"



# Snakemake reads `--config key=True` as a boolean but `key=true` as the string "true": take either.
for _key, _value in list(config.items()):
    if isinstance(_value, str) and _value.lower() in ("true", "false"):
        config[_key] = _value.lower() == "true"

validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


# A run killed with kill -9 leaves Snakemake's locks behind; the main process (not a job's own
# snakemake) clears them when the run that took them is gone, so a bare rerun resumes
# (fewlabels.runlock), and notes itself as their holder once it has them.
from snakemake_interface_executor_plugins.settings import ExecMode as _ExecMode
from fewlabels import runlock as _runlock

if workflow.exec_mode == _ExecMode.DEFAULT:
    for _lock in _runlock.clear_stale_locks():
        print(f"removed {_lock}: left by a run of this workflow that is no longer running", file=sys.stderr)


onstart:
    if workflow.exec_mode == _ExecMode.DEFAULT:
        _runlock.record_owner()


include: "workflow/rules/data.smk"
# Archive mode (config archive: true) trains nothing: results/ is restored from results/archive/.
if not config["archive"]:

    include: "workflow/rules/train.smk"
    include: "workflow/rules/aggregate.smk"
    include: "workflow/rules/benchmarks.smk"


include: "workflow/rules/figures.smk"
include: "workflow/rules/hparams.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/archive.smk"


rule all:
    input:
        "paper/ms.pdf",
        rules.report_tables.output,
    default_target: True


# On a cluster only training is queued (rules train, pretrain and, with group_runs, their group
# rules); everything else is seconds of CPU work on the submitting host, and acquiring MNIST needs
# the package registry.
workflow.localrules(*[r.name for r in workflow.rules
                      if r.name not in ("train", "pretrain", "train_group", "pretrain_group")])
