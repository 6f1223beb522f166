# Reproducing without retraining. Included last, after every rule that reads run files.
#
#   snakemake archive --cores all --configfile presets/quick.yaml    # (re)make results/archive/
#   snakemake --cores all --configfile results/archive/config.yaml   # figures, tables, PDF from it
#
# results/archive/config.yaml is the configuration the archive was made with, plus
# `archive: true`. In archive mode the train, pretrain, aggregate and benchmarks rules do
# not exist; `restore` copies each archived file back to results/ (checking its hash),
# so every rule downstream is the same as in a full run.

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

    # The resolved configuration, for merging re-runs of some cells into the archive
    # (scripts/archive_update.sh: `python -m fewlabels.archive update --config results/config.json`).
    rule config_json:
        output:
            "results/config.json",
        params:
            config=lambda wc: shlex.quote(json.dumps(config, sort_keys=True)),
        log:
            "logs/config_json.log",
        localrule: True
        conda:
            ENV
        shell:
            "printf '%s\\n' {params.config} > {output} 2> {log}"

    # What `rule archive` would take (archive_inputs: metrics.csv, benchmarks.csv and every run file a
    # figure or table reads), one path a line, so that scripts/archive_update.sh merges a re-run cell
    # with the same files a whole archive would hold of it (its checkpoints and metrics.json included).
    rule archive_list:
        output:
            "results/archive_inputs.txt",
        params:
            files=lambda wc: " ".join(archive_inputs()),
        log:
            "logs/archive_list.log",
        localrule: True
        conda:
            ENV
        shell:
            "printf '%s\\n' {params.files} > {output} 2> {log}"
