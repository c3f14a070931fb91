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
# sentence-transformers for the optional semantic dedup; never the `train` extra, which pins the CPU
# torch of the test machines.
COPY pyproject.toml README.md ./
COPY prep ./prep
COPY plugins ./plugins
COPY evals ./evals
# The project's own source tree; pyproject.toml bounds its dependencies.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir '.[gpu,semantic]'
COPY recipes ./recipes

VOLUME ["/workspace/merged-instruct/data", "/workspace/merged-instruct/outputs", "/workspace/hf-cache"]
CMD ["axolotl", "train", "recipes/llama2-70b-merged.yml"]
