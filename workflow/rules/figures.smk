# Figure jobs (like the report jobs) take one core each: threads: 1, which Snakemake also passes to
# BLAS and OpenMP (OMP_NUM_THREADS), and the figures CLI pins torch to one thread.


rule fig_accuracy:
    input:
        "results/metrics.csv",
    output:
        pdf=report("paper/generated/fig_accuracy.pdf", caption="../report/fig_accuracy.rst", category="Results"),
        png="paper/generated/fig_accuracy.png",
    log:
        "logs/figures/accuracy.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures accuracy --metrics {input} --out {output.pdf} > {log} 2>&1"


rule fig_aae:
    input:
        # a function, so that a grid without aae fails only when these figures are asked for
        model=lambda wc: f"{figure_run('aae')}/model.pt",
        mnist=MNIST,
    output:
        latent=report("paper/generated/fig_aae_latent.pdf", caption="../report/fig_aae_latent.rst", category="AAE"),
        latent_png="paper/generated/fig_aae_latent.png",
        style=report("paper/generated/fig_aae_style.pdf", caption="../report/fig_aae_style.rst", category="AAE"),
        style_png="paper/generated/fig_aae_style.png",
        # the caption's measured statement: how much the class code changes the style grid
        style_tex="paper/generated/fig_aae_style.tex",
        recon=report("paper/generated/fig_aae_recon.pdf", caption="../report/fig_aae_recon.rst", category="AAE"),
        recon_png="paper/generated/fig_aae_recon.png",
    log:
        "logs/figures/aae.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures aae --model {input.model} --mnist {input.mnist} --latent {output.latent}"
        " --style {output.style} --style-tex {output.style_tex} --recon {output.recon} > {log} 2>&1"


rule fig_transfer:
    input:
        "results/metrics.csv",
    output:
        pdf=report("paper/generated/fig_transfer.pdf", caption="../report/fig_transfer.rst", category="Transfer"),
        png="paper/generated/fig_transfer.png",
    log:
        "logs/figures/transfer.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures transfer --metrics {input} --out {output.pdf} > {log} 2>&1"


rule fig_which500:
    input:
        "results/metrics.csv",
    output:
        pdf=report("paper/generated/fig_which500.pdf", caption="../report/fig_which500.rst", category="Transfer"),
        png="paper/generated/fig_which500.png",
    log:
        "logs/figures/which500.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures which500 --metrics {input} --out {output.pdf} > {log} 2>&1"


rule fig_siamese:
    input:
        "results/metrics.csv",
    output:
        pdf=report("paper/generated/fig_siamese.pdf", caption="../report/fig_siamese.rst", category="Siamese"),
        png="paper/generated/fig_siamese.png",
    log:
        "logs/figures/siamese.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures siamese --metrics {input} --out {output.pdf} > {log} 2>&1"


rule fig_siamese_embedding:
    input:
        model=siamese_pairs_model,
        mnist=MNIST,
    output:
        pdf=report("paper/generated/fig_siamese_embedding.pdf", caption="../report/fig_siamese_embedding.rst",
                   category="Siamese"),
        png="paper/generated/fig_siamese_embedding.png",
    log:
        "logs/figures/siamese_embedding.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures siamese-embedding --model {input.model} --mnist {input.mnist}"
        " --out {output.pdf} > {log} 2>&1"


rule fig_gan_samples:
    input:
        models=gan_sample_models,
    output:
        pdf=report("paper/generated/fig_gan_samples.pdf", caption="../report/fig_gan_samples.rst", category="GAN"),
        png="paper/generated/fig_gan_samples.png",
    log:
        "logs/figures/gan_samples.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures gan-samples --model {input.models} --out {output.pdf} > {log} 2>&1"


rule fig_gan_curves:
    input:
        history=lambda wc: [f"{d}/history.csv" for d in gan_curve_runs()],
        metrics=lambda wc: [f"{d}/metrics.json" for d in gan_curve_runs()],
    output:
        pdf=report("paper/generated/fig_gan_curves.pdf", caption="../report/fig_gan_curves.rst", category="GAN"),
        png="paper/generated/fig_gan_curves.png",
    log:
        "logs/figures/gan_curves.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures gan-curves --history {input.history} --out {output.pdf} > {log} 2>&1"


# The figures the paper includes are those of FIGURE_NEEDS (common.smk) whose runs are in the grid:
# the paper rule asks for wanted_figure_files(), evaluated after every figures file is read.


# ---- seed 003: autoencoders (src/fewlabels/report/figures/ae.py) ----
rule fig_ae_recon:
    input:
        models=ae_stage_models,
        mnist=MNIST,
    output:
        pdf=report("paper/generated/fig_ae_recon.pdf", caption="../report/fig_ae_recon.rst", category="Autoencoders"),
        png="paper/generated/fig_ae_recon.png",
    log:
        "logs/figures/ae_recon.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures ae-recon --model {input.models} --mnist {input.mnist} --out {output.pdf} > {log} 2>&1"


rule fig_vae_latent:
    input:
        model=vae_model,
        mnist=MNIST,
    output:
        pdf=report("paper/generated/fig_vae_latent.pdf", caption="../report/fig_vae_latent.rst",
                   category="Autoencoders"),
        png="paper/generated/fig_vae_latent.png",
    log:
        "logs/figures/vae_latent.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures vae-latent --model {input.model} --mnist {input.mnist} --out {output.pdf} > {log} 2>&1"


rule fig_ae_accuracy:
    input:
        "results/metrics.csv",
    output:
        pdf=report("paper/generated/fig_ae_accuracy.pdf", caption="../report/fig_ae_accuracy.rst",
                   category="Autoencoders"),
        png="paper/generated/fig_ae_accuracy.png",
    log:
        "logs/figures/ae_accuracy.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures ae-accuracy --metrics {input} --out {output.pdf} > {log} 2>&1"



FIGURE_NEEDS.update({f: METHOD_FIGURES[f] for f in ("fig_ae_recon", "fig_vae_latent", "fig_ae_accuracy")})


# ---- pictures of the verdicts (src/fewlabels/report/figures/verdicts.py) ----
# The seed claims as a forest plot (stated band, the seeds' own code, the port as published, each
# quirk off, corrected) and the paired differences; presets without the seeds' variants draw the
# claims' registered methods, marked "protocol differs".
rule fig_forest:
    input:
        metrics="results/metrics.csv",
        claims="paper/claims.yaml",
        originals="paper/original_code.yaml",
    output:
        pdf=report("paper/generated/fig_forest.pdf", caption="../report/fig_forest.rst", category="Claims"),
        png="paper/generated/fig_forest.png",
    log:
        "logs/figures/forest.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures forest --metrics {input.metrics} --claims {input.claims}"
        " --originals {input.originals} --out {output.pdf} > {log} 2>&1"


rule fig_seed_curves:
    input:
        originals="paper/original_code.yaml",
        claims="paper/claims.yaml",
        runs=seed_curve_files,
    output:
        pdf=report("paper/generated/fig_seed_curves.pdf", caption="../report/fig_seed_curves.rst", category="Claims"),
        png="paper/generated/fig_seed_curves.png",
    params:
        history=lambda wc, input: " ".join(f for f in input.runs if f.endswith("history.csv")),
    log:
        "logs/figures/seed_curves.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.figures seed-curves --originals {input.originals} --claims {input.claims}"
        " --history {params.history} --out {output.pdf} > {log} 2>&1"


# The forest plot: any seed claim's as-published variant; in a preset without them (quick, paper),
# the registered methods the claims fall back to (drawn as "protocol differs"), on both tasks, so
# that a subset of a few methods does not get a near-empty forest.
SEED_CLAIM_VARIANTS = ("supervised-004-published|aae-004-published|sgan-001-published|transfer-002-published"
                       "|scratch-002-published|siamese-000-published|linear-003-published|conv-003-published")
FIGURE_NEEDS.update({
    "fig_forest": [SEED_CLAIM_VARIANTS] if grid_has(SEED_CLAIM_VARIANTS) else
                  ["supervised|aae|sgan|siamese|linear|conv", "transfer|scratch"],
    "fig_seed_curves": ["transfer-002-published|scratch-002-published|sgan-001-published"
                        "|supervised-004-published|aae-004-published"],
})
# A figure the registry names (a method's Spec.figures) but no rule here draws is a mistake, not a
# figure silently left out.
if set(METHOD_FIGURES) - set(FIGURE_NEEDS):
    raise ValueError(f"figures named in fewlabels.methods but not in FIGURE_NEEDS: {sorted(set(METHOD_FIGURES) - set(FIGURE_NEEDS))}")
