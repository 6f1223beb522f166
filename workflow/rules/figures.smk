rule fig_accuracy:
    input:
        "results/metrics.csv",
    output:
        pdf=report("paper/generated/fig_accuracy.pdf", caption="../report/fig_accuracy.rst", category="Results"),
        png="paper/generated/fig_accuracy.png",
    log:
        "logs/figures/accuracy.log",
    conda:
        ENV
    shell:
        "python -m fewlabels.figures accuracy --metrics {input} --out {output.pdf} > {log} 2>&1"


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
        recon=report("paper/generated/fig_aae_recon.pdf", caption="../report/fig_aae_recon.rst", category="AAE"),
        recon_png="paper/generated/fig_aae_recon.png",
    log:
        "logs/figures/aae.log",
    conda:
        ENV
    shell:
        "python -m fewlabels.figures aae --model {input.model} --mnist {input.mnist} --latent {output.latent}"
        " --style {output.style} --recon {output.recon} > {log} 2>&1"


# Every figure the paper includes; the paper rule depends on all of them.
PAPER_FIGURES = [
    rules.fig_accuracy.output.pdf,
    rules.fig_aae.output.latent,
    rules.fig_aae.output.style,
    rules.fig_aae.output.recon,
]
