rule train:
    input:
        unpack(pretrained_input),
        # the method's own file: editing it makes exactly its runs out of date (mtime)
        code=lambda wc: method_source(wc.method),
        mnist=MNIST,
        split="results/splits/{task}/n{labels}/seed{seed}.npz",
    output:
        metrics="results/runs/{task}/{method}/n{labels}/seed{seed}/metrics.json",
        history="results/runs/{task}/{method}/n{labels}/seed{seed}/history.csv",
        model="results/runs/{task}/{method}/n{labels}/seed{seed}/model.pt",
    wildcard_constraints:
        labels=r"\d+|all",
        seed=r"\d+",
    params:
        method=lambda wc: resolve(config, wc.method).method,
        hparams=lambda wc: hparams_arg(wc.method),
        device=config["device"],
        pool_limit=pool_limit_arg(),
        pretrained=pretrained_arg,
        checkpoint="results/checkpoints/{task}/{method}/n{labels}/seed{seed}.pt",
    log:
        "logs/train/{task}/{method}/n{labels}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{task}/{method}/n{labels}/seed{seed}.tsv"
    threads: 1
    resources:
        gpu=lambda wc: train_gpus(),
    conda:
        ENV
    shell:
        "python -m fewlabels.train --method {params.method} --name {wildcards.method} --task {wildcards.task}"
        " --labels {wildcards.labels} --seed {wildcards.seed} --mnist {input.mnist} --split {input.split}"
        " --out $(dirname {output.metrics}) --hparams {params.hparams} --device {params.device}"
        " --threads {threads} --checkpoint {params.checkpoint} {params.pool_limit} {params.pretrained}"
        " > {log} 2>&1"


rule pretrain:
    input:
        code=lambda wc: method_source(wc.stage),
        mnist=MNIST,
        # a first stage that must leave a budget's labeled images out reads that budget's split
        split=lambda wc: "results/splits/{t}/n{n}/seed{s}.npz".format(
            t=resolve(config, wc.stage).task, n=resolve(config, wc.stage).split_labels or "all", s=wc.seed),
    output:
        metrics="results/pretrain/{stage}/seed{seed}/metrics.json",
        history="results/pretrain/{stage}/seed{seed}/history.csv",
        model="results/pretrain/{stage}/seed{seed}/model.pt",
    wildcard_constraints:
        seed=r"\d+",
    params:
        method=lambda wc: resolve(config, wc.stage).method,
        task=lambda wc: resolve(config, wc.stage).task,
        hparams=lambda wc: hparams_arg(wc.stage),
        device=config["device"],
        pool_limit=pool_limit_arg(),
        checkpoint="results/checkpoints/pretrain/{stage}/seed{seed}.pt",
    log:
        "logs/pretrain/{stage}/seed{seed}.log",
    benchmark:
        "benchmarks/pretrain/{stage}/seed{seed}.tsv"
    threads: 1
    resources:
        gpu=lambda wc: train_gpus(),
    conda:
        ENV
    shell:
        "python -m fewlabels.train --method {params.method} --name {wildcards.stage} --task {params.task} --labels all"
        " --seed {wildcards.seed} --mnist {input.mnist} --split {input.split}"
        " --out $(dirname {output.metrics}) --hparams {params.hparams} --device {params.device}"
        " --threads {threads} --checkpoint {params.checkpoint} {params.pool_limit} > {log} 2>&1"
