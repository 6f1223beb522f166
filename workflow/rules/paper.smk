rule tables:
    input:
        metrics="results/metrics.csv",
        claims="paper/claims.yaml",
        originals="paper/original_code.yaml",
    output:
        results="paper/generated/tab_results.tex",
        scorecard="paper/generated/tab_scorecard.tex",
        paired="paper/generated/tab_paired.tex",
        fidelity="paper/generated/tab_fidelity.tex",
        macros="paper/generated/macros.tex",
    params:
        preset=lambda wc: config["preset"],
    log:
        "logs/paper/tables.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.tables --metrics {input.metrics} --claims {input.claims}"
        " --originals {input.originals} --preset {params.preset} --outdir $(dirname {output.results}) > {log} 2>&1"


rule ablation:
    input:
        metrics="results/metrics.csv",
        claims="paper/claims.yaml",
    output:
        ablation="paper/generated/tab_ablation.tex",
        selection="paper/generated/tab_selection.tex",
        steps="paper/generated/tab_siamese_steps.tex",
        macros="paper/generated/macros_ablation.tex",
    log:
        "logs/paper/ablation.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.ablation --metrics {input.metrics} --claims {input.claims}"
        " --outdir $(dirname {output.ablation}) > {log} 2>&1"


# The findings up front: the abstract's measured sentences and the summary table (which claims held,
# which did not, which were withheld, the largest quirk; the headline numbers in a preset without claims).
rule summary_tex:
    input:
        metrics="results/metrics.csv",
        claims="paper/claims.yaml",
        originals="paper/original_code.yaml",
    output:
        abstract="paper/generated/abstract.tex",
        table="paper/generated/tab_summary.tex",
    params:
        preset=lambda wc: config["preset"],
    log:
        "logs/paper/summary.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.summary --metrics {input.metrics} --claims {input.claims}"
        " --originals {input.originals} --preset {params.preset} --outdir $(dirname {output.abstract}) > {log} 2>&1"


# What this grid holds: flran@name per grid name, flbase@name per registered method it runs, and
# flfig@name per wanted figure, for ms.tex's \flif and \flfigif: what the grid lacks is left out of
# the document (the lists are params: a grid change reruns it).
rule grid_tex:
    output:
        "paper/generated/grid.tex",
    params:
        methods=lambda wc: " ".join(grid_methods()),
        bases=lambda wc: " ".join(grid_bases()),
        figures=lambda wc: " ".join(wanted_figures()),
    log:
        "logs/paper/grid_tex.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.paper grid --out {output} --methods {params.methods} --figures {params.figures}"
        " --bases {params.bases}"
        " > {log} 2>&1"


# The appendix's paragraph on code versions and machines (warns when the runs mix code versions).
rule provenance_tex:
    input:
        "results/metrics.csv",
    output:
        "paper/generated/provenance.tex",
    log:
        "logs/paper/provenance.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.provenance tex --metrics {input} --out {output} > {log} 2>&1"


# What bf16 costs in accuracy (report.precision_cost), for a preset whose grid trains a method in both
# fp32 and bf16 (presets/precision.yaml), or from such a preset's metrics (config precision_cost: the
# compare preset shows the measurement that kept it in fp32); ms.tex includes the table only where it is made.
from fewlabels.report.precision_cost import grid_pairs as precision_grid_pairs

PRECISION_METRICS = "results/metrics.csv" if precision_grid_pairs(config) else config.get("precision_cost")
if PRECISION_METRICS and PRECISION_METRICS != "results/metrics.csv" and not Path(PRECISION_METRICS).is_file():
    raise ValueError(f"config precision_cost: {PRECISION_METRICS} is not a file; name the metrics.csv of a preset "
                     "that trains methods in both fp32 and bf16 (results/archive-precision/metrics.csv, built by "
                     "presets/precision.yaml), or drop the key")

if PRECISION_METRICS:

    rule precision_tex:
        input:
            PRECISION_METRICS,
        output:
            "paper/generated/tab_precision.tex",
        log:
            "logs/paper/precision_tex.log",
        threads: 1
        conda:
            ENV
        shell:
            "python -m fewlabels.report.precision_cost --metrics {input} --tex {output} > {log} 2>&1"


# The shared protocol against the published numbers (report.compare, figures compare-curves): for the compare
# preset and the study (paper, which trains with the compare preset's schedules); ms.tex includes its section
# where the tables exist.
if config["preset"] in ("compare", "paper"):

    rule compare_tex:
        input:
            metrics="results/metrics.csv",
            published="paper/published.yaml",
            history=[f"{run_dir(r)}/history.csv" for r in RUNS],
        output:
            expand("paper/generated/{name}", name=["tab_compare.tex", "tab_convergence.tex", "tab_below.tex",
                                                    "macros_compare.tex", "abstract_compare.tex",
                                                    "compare_status.tex", "conclusion_compare.tex"]),
        log:
            "logs/paper/compare_tex.log",
        threads: 1
        conda:
            ENV
        params:
            pending=lambda wc: " ".join(shlex.quote(p) for p in config.get("pending", [])),
            config=lambda wc: shlex.quote(json.dumps(config, sort_keys=True)),  # the runs' learning-rate drops
        shell:
            "python -m fewlabels.report.compare --metrics {input.metrics} --published {input.published} "
            "--out-dir paper/generated --config-json {params.config} --pending {params.pending} > {log} 2>&1"

    rule fig_compare:
        input:
            metrics="results/metrics.csv",
            history=[f"{run_dir(r)}/history.csv" for r in RUNS],
        output:
            pdf="paper/generated/fig_compare.pdf",
            png="paper/generated/fig_compare.png",
        log:
            "logs/figures/compare.log",
        threads: 1
        conda:
            ENV
        params:
            config=lambda wc: shlex.quote(json.dumps(config, sort_keys=True)),  # the runs' learning-rate drops
        shell:
            "python -m fewlabels.report.figures compare-curves --metrics {input.metrics} --out {output.pdf} "
            "--config-json {params.config} > {log} 2>&1"


# ms.tex includes each of these where it exists; a preset that does not make one leaves it out of its
# build even when another preset's build left it in paper/generated/.
OPTIONAL_GENERATED = ("tab_hparams.tex", "tab_precision.tex", "tab_compare.tex", "tab_convergence.tex", "tab_below.tex",
                      "macros_compare.tex", "abstract_compare.tex", "compare_status.tex", "conclusion_compare.tex",
                      "fig_compare.pdf")


rule paper:
    input:
        tex="paper/ms.tex",
        bib="paper/refs.bib",
        generated=rules.tables.output,
        ablation=rules.ablation.output,
        figures=wanted_figure_files,
        grid="paper/generated/grid.tex",
        provenance="paper/generated/provenance.tex",
        benchmarks="paper/generated/tab_benchmarks.tex",
        summary=rules.summary_tex.output,
        optional=generated_if_made(*OPTIONAL_GENERATED),
    output:
        pdf="paper/ms.pdf",
        texlog="paper/ms.log",
    params:
        exclude=lambda wc: " ".join(generated_not_made(*OPTIONAL_GENERATED)),
    log:
        "logs/paper/latexmk.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.paper --tex {input.tex} --out {output.pdf} --exclude {params.exclude} > {log} 2>&1"
