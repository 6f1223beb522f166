# Reproducing without retraining. Included last, after every rule that reads run files.
#
#   snakemake --cores all --configfile presets/quick.yaml archive    # (re)make results/archive/
#   snakemake --cores all --configfile results/archive/config.yaml   # figures, tables, PDF from it
#
# results/archive/config.yaml is the configuration the archive was made with, plus
# `archive: true`. In archive mode the train, pretrain, aggregate and benchmarks rules do
# not exist; `restore` copies each archived file back to results/ (checking its hash),
# so every rule downstream is the same as in a full run.

import re

ARCHIVE = "results/archive"
# What the archive may hold, relative to results/ (splits are cheap and are recomputed).
ARCHIVED = r"(runs|pretrain)/.+|metrics\.csv|benchmarks\.csv"

if config["archive"]:

    from fewlabels.archive import check_config as archive_check_config

    archive_check_config(config, ARCHIVE)

    rule restore:
        input:
            f"{ARCHIVE}/{{path}}",
        output:
            "results/{path}",
        wildcard_constraints:
            path=ARCHIVED,
        log:
            "logs/restore/{path}.log",
        localrule: True
        conda:
            ENV
        shell:
            "python -m fewlabels.archive restore --archive {ARCHIVE} --path {wildcards.path} --out {output} > {log} 2>&1"

else:

    def rule_inputs(r):
        """The input files of a rule without wildcards, input functions included."""
        from snakemake.iocontainers import Wildcards

        for f in r.input:
            if callable(f):
                if r.has_wildcards():
                    continue  # cannot be evaluated without a job; no figure rule has wildcards
                try:
                    f = f(Wildcards())
                except Exception:  # e.g. figure_run() of a method the grid lacks: not buildable anyway
                    continue
            if isinstance(f, dict):
                f = list(f.values())
            yield from (map(str, f) if isinstance(f, (list, tuple)) else [str(f)])

    def archive_inputs():
        """results/metrics.csv, results/benchmarks.csv and every run file that a rule other than
        training and aggregation reads (the figures' checkpoints and histories)."""
        skip = {"train", "pretrain", "aggregate", "benchmarks", "archive"}
        files = {"results/metrics.csv", "results/benchmarks.csv"}
        for r in workflow.rules:
            if r.name not in skip:
                files.update(f for f in rule_inputs(r)
                             if f.startswith("results/") and re.fullmatch(ARCHIVED, f[len("results/"):]))
        return sorted(files)

    rule archive:
        input:
            archive_inputs(),
        output:
            directory(ARCHIVE),
        params:
            config=lambda wc: shlex.quote(json.dumps(config, sort_keys=True)),
        log:
            "logs/archive.log",
        localrule: True
        conda:
            ENV
        shell:
            "python -m fewlabels.archive create --archive {output} --config {params.config} {input} > {log} 2>&1"
