# The training container: the official Axolotl image at the version the project is tested against, plus
# this project (prep, plugins, evals, recipes). Build and run: see "Training on A100s" in README.md.
ARG AXOLOTL_TAG=0.19.0
FROM axolotlai/axolotl:${AXOLOTL_TAG}

ENV AXOLOTL_DO_NOT_TRACK=1 \
    HF_HOME=/workspace/hf-cache \
    PYTHONUNBUFFERED=1
WORKDIR /workspace/merged-instruct

# Dependencies first so a code change does not reinstall them. The image already has torch (CUDA),
# axolotl, deepspeed and flash-attn: the `gpu` extra only checks they are there, `semantic` adds
# sentence-transformers for the optional semantic dedup, `eval` adds vLLM (the eval backend of the full
# fine-tune recipes); never the `train` extra, which pins the CPU torch of the test machines.
# vLLM wheels pin one torch each (PyPI metadata: vllm 0.26.0 torch 2.11.0; 0.27.1 to 0.33.0 torch
# 2.13.0): the constraint below makes pip pick the vLLM built for the image's torch, or fail the build,
# never replace that torch.
COPY pyproject.toml README.md ./
COPY prep ./prep
COPY plugins ./plugins
COPY evals ./evals
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The project's own source tree; pyproject.toml bounds its dependencies.
# hadolint ignore=DL3013
RUN python -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' > /tmp/image-torch.txt \
    && pip install --no-cache-dir -c /tmp/image-torch.txt '.[gpu,semantic,eval]' \
    && python -c 'import torch, vllm; print("torch", torch.__version__, "vllm", vllm.__version__)'
COPY recipes ./recipes

VOLUME ["/workspace/merged-instruct/data", "/workspace/merged-instruct/outputs", "/workspace/hf-cache"]
CMD ["axolotl", "train", "recipes/llama2-70b-merged.yml"]
