# fewlabels: learning MNIST from few labels, reproduced end to end.
# Usage: snakemake --cores all [--configfile presets/quick.yaml]   (see README.md)
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/paper.smk"


rule all:
    input:
        "paper/ms.pdf",
    default_target: True
