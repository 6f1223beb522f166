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
        "python -m fewlabels.training --method {params.method} --name {wildcards.method} --task {wildcards.task}"
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
        "python -m fewlabels.training --method {params.method} --name {wildcards.stage} --task {params.task} --labels all"
        " --seed {wildcards.seed} --mnist {input.mnist} --split {input.split}"
        " --out $(dirname {output.metrics}) --hparams {params.hparams} --device {params.device}"
        " --threads {threads} --checkpoint {params.checkpoint} {params.pool_limit} > {log} 2>&1"


# ---- group_runs: true -- one job per method x task x budget (or first stage), every seed of the
# preset in one process (python -m fewlabels.training --seed 0 1 2 ...; stacked on a GPU where the method
# allows). Each run still writes its own files and checkpoint. A group job that fails loses its
# outputs (Snakemake deletes a failed job's files), but its runs' checkpoints stay: run again, the
# finished runs are written from their final checkpoint and the others resume. Snakemake reruns
# whole jobs: one seed of a group again (`--forcerun`, or its files deleted) means the whole group
# again, and switching group_runs on or off makes every run it touches out of date (another rule,
# other benchmark files). Runs whose blocks set their own seeds keep rule train.
if config["group_runs"]:

    ruleorder: train_group > train
    ruleorder: pretrain_group > pretrain

    rule train_group:
        input:
            unpack(group_pretrained_input),
            code=lambda wc: method_source(wc.method),
            mnist=MNIST,
            splits=expand("results/splits/{{task}}/n{{labels}}/seed{seed}.npz", seed=SEEDS),
        output:
            metrics=expand("results/runs/{{task}}/{{method}}/n{{labels}}/seed{seed}/metrics.json", seed=SEEDS),
            history=expand("results/runs/{{task}}/{{method}}/n{{labels}}/seed{seed}/history.csv", seed=SEEDS),
            model=expand("results/runs/{{task}}/{{method}}/n{{labels}}/seed{seed}/model.pt", seed=SEEDS),
        wildcard_constraints:
            method=name_regex(GROUPED_METHODS),
            labels=r"\d+|all",
        params:
            method=lambda wc: resolve(config, wc.method).method,
            hparams=lambda wc: hparams_arg(wc.method),
            device=config["device"],
            stack=config["stack"],
            capture=config["capture"],
            pool_limit=pool_limit_arg(),
            pretrained=group_pretrained_arg,
            seeds=" ".join(map(str, SEEDS)),
            outs=lambda wc, output: " ".join(os.path.dirname(f) for f in output.metrics),
            checkpoints=" ".join(f"results/checkpoints/{{task}}/{{method}}/n{{labels}}/seed{s}.pt" for s in SEEDS),
        log:
            "logs/train_group/{task}/{method}/n{labels}.log",
        benchmark:
            "benchmarks/train_group/{task}/{method}/n{labels}.tsv"
        threads: 1
        resources:
            gpu=lambda wc: train_gpus(),
        conda:
            ENV
        shell:
            "python -m fewlabels.training --method {params.method} --name {wildcards.method} --task {wildcards.task}"
            " --labels {wildcards.labels} --seed {params.seeds} --mnist {input.mnist} --split {input.splits}"
            " --out {params.outs} --hparams {params.hparams} --device {params.device} --stack {params.stack}"
            " --capture {params.capture}"
            " --threads {threads} --checkpoint {params.checkpoints} {params.pool_limit} {params.pretrained}"
            " > {log} 2>&1"

    rule pretrain_group:
        input:
            code=lambda wc: method_source(wc.stage),
            mnist=MNIST,
            splits=lambda wc: ["results/splits/{t}/n{n}/seed{s}.npz".format(
                t=resolve(config, wc.stage).task, n=resolve(config, wc.stage).split_labels or "all", s=s)
                for s in SEEDS],
        output:
            metrics=expand("results/pretrain/{{stage}}/seed{seed}/metrics.json", seed=SEEDS),
            history=expand("results/pretrain/{{stage}}/seed{seed}/history.csv", seed=SEEDS),
            model=expand("results/pretrain/{{stage}}/seed{seed}/model.pt", seed=SEEDS),
        wildcard_constraints:
            stage=name_regex(GROUPED_STAGES),
        params:
            method=lambda wc: resolve(config, wc.stage).method,
            task=lambda wc: resolve(config, wc.stage).task,
            hparams=lambda wc: hparams_arg(wc.stage),
            device=config["device"],
            stack=config["stack"],
            capture=config["capture"],
            pool_limit=pool_limit_arg(),
            seeds=" ".join(map(str, SEEDS)),
            outs=lambda wc, output: " ".join(os.path.dirname(f) for f in output.metrics),
            checkpoints=" ".join(f"results/checkpoints/pretrain/{{stage}}/seed{s}.pt" for s in SEEDS),
        log:
            "logs/pretrain_group/{stage}.log",
        benchmark:
            "benchmarks/pretrain_group/{stage}.tsv"
        threads: 1
        resources:
            gpu=lambda wc: train_gpus(),
        conda:
            ENV
        shell:
            "python -m fewlabels.training --method {params.method} --name {wildcards.stage} --task {params.task}"
            " --labels all --seed {params.seeds} --mnist {input.mnist} --split {input.splits}"
            " --out {params.outs} --hparams {params.hparams} --device {params.device} --stack {params.stack}"
            " --capture {params.capture}"
            " --threads {threads} --checkpoint {params.checkpoints} {params.pool_limit} > {log} 2>&1"
