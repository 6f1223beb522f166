# The hyperparameter tables of the paper, generated from each method's DEFAULTS (with the seed
# citation beside each key in the source) and the preset's overrides: the text cannot drift from
# the code. The methods' source files are inputs (a changed default reruns the rule) and the
# preset's overrides are params (a changed override reruns it too).
from fewlabels.report.hparams import grid_methods as hparams_grid_methods
from fewlabels.report.hparams import preset_overrides as hparams_preset_overrides
from fewlabels.report.hparams import variant_rows as hparams_variant_rows

HPARAMS_METHODS = hparams_grid_methods(config)


rule hparams_tex:
    input:
        sources=sorted(set(method_file(n) for n in HPARAMS_METHODS)) + ["src/fewlabels/methods/base.py"],
    output:
        "paper/generated/tab_hparams.tex",
    params:
        methods=" ".join(HPARAMS_METHODS),
        overrides=lambda wc: shlex.quote(json.dumps({"methods": hparams_preset_overrides(config, HPARAMS_METHODS)},
                                                    sort_keys=True)),
        # the variants the grid runs, with the values each sets (the appendix prints them)
        variants=lambda wc: shlex.quote(json.dumps(hparams_variant_rows(config), sort_keys=True)),
    log:
        "logs/paper/hparams_tex.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.hparams --methods {params.methods} --overrides {params.overrides}"
        " --variants {params.variants} --out {output} > {log} 2>&1"
