/* core/lint_rules.c - the catalogue of lint rules: IDs, names, severities,
 * reasons, fixes and explanations (data only; the checks are in lint.c). */
#include <strings.h>

#include "lint_internal.h"
#include "core/banned.h"

static const struct plait_lint_rule rules[R_COUNT] = {
    [R_BASE_UNPINNED] =
	{
	    "PL001",
	    "base-image-unpinned",
	    PLAIT_LINT_ERROR,
	    "a base image without a tag, or tagged 'latest', changes under you: builds are not "
	    "reproducible",
	    "pin a version tag, better a digest: FROM python:3.11-slim@sha256:...",
	    "'FROM python' and 'FROM python:latest' pull whatever was pushed last, so two builds\n"
	    "of the same commit can differ (another Python, another CUDA). Pin a tag, and a\n"
	    "digest where the build must be exact.\n"
	    "  bad:  FROM pytorch/pytorch\n"
	    "  good: FROM pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime\n"
	    "An image given as ${ARG} is judged by the ARG's default; 'scratch' and\n"
	    "earlier stage names are not images and are not checked.",
	},
    [R_BASE_NO_DIGEST] =
	{
	    "PL002",
	    "base-image-no-digest",
	    PLAIT_LINT_INFO,
	    "a tag can be moved to another image; only a digest names exactly one image",
	    "add the digest: FROM image:tag@sha256:<digest>",
	    "Tags are mutable: a maintainer can push a rebuilt 'python:3.11-slim' at any time.\n"
	    "The digest pins the exact bytes while the tag keeps it readable.\n"
	    "  bad:  FROM python:3.11-slim\n"
	    "  good: FROM "
	    "python:3.11-slim@sha256:"
	    "2b0079146a74e23bf4ae8f6a28e1b484c6292f6fb904cbb51825b4a19812fcd8",
	},
    [R_APT_RECOMMENDS] =
	{
	    "PL003",
	    "apt-install-recommends",
	    PLAIT_LINT_WARNING,
	    "apt-get installs recommended packages by default: larger images, more CVEs",
	    "add --no-install-recommends to apt-get install",
	    "Recommended packages are rarely needed in a container and often pull in hundreds of\n"
	    "megabytes (X11, documentation, compilers).\n"
	    "  bad:  RUN apt-get install -y curl\n"
	    "  good: RUN apt-get install -y --no-install-recommends curl",
	},
    [R_APT_UNPINNED] =
	{
	    "PL004",
	    "apt-install-unpinned",
	    PLAIT_LINT_INFO,
	    "apt packages without versions change with the archive: builds are not reproducible",
	    "pin versions: apt-get install curl=7.88.1-10+deb12u5",
	    "Without a version apt-get installs whatever the mirror has today. Pin the versions\n"
	    "the image was tested with (apt-cache policy PKG shows them).\n"
	    "  bad:  RUN apt-get install -y --no-install-recommends curl\n"
	    "  good: RUN apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5",
	},
    [R_APT_LISTS] =
	{
	    "PL005",
	    "apt-lists-not-removed",
	    PLAIT_LINT_WARNING,
	    "apt package lists left in the layer add tens of megabytes",
	    "end the same RUN with '&& rm -rf /var/lib/apt/lists/*', or use a cache mount",
	    "A file removed in a later RUN still lives in the earlier layer, so the lists must go\n"
	    "in the RUN that downloaded them. A cache mount keeps them out of the image too.\n"
	    "  bad:  RUN apt-get update && apt-get install -y --no-install-recommends curl\n"
	    "  good: RUN apt-get update && apt-get install -y --no-install-recommends curl \\\n"
	    "            && rm -rf /var/lib/apt/lists/*\n"
	    "  good: RUN --mount=type=cache,target=/var/lib/apt,sharing=locked \\\n"
	    "            apt-get update && apt-get install -y --no-install-recommends curl",
	},
    [R_APT_UPGRADE] =
	{
	    "PL006",
	    "apt-upgrade",
	    PLAIT_LINT_WARNING,
	    "apt-get upgrade in a build makes the image depend on the day it was built",
	    "use a newer pinned base image instead of upgrading in the build",
	    "Upgrading every package in a RUN step hides what the image contains and is cached\n"
	    "forever by the build cache. Move to a newer base image tag instead.\n"
	    "  bad:  RUN apt-get update && apt-get upgrade -y\n"
	    "  good: FROM debian:bookworm-20240701-slim",
	},
    [R_PIP_UNPINNED] =
	{
	    "PL007",
	    "pip-install-unpinned",
	    PLAIT_LINT_WARNING,
	    "pip packages without exact versions resolve differently from one build to the next",
	    "pin with pkg==version, or install from a lock file: -r requirements.txt, -c "
	    "constraints.txt",
	    "An unpinned 'torch' or 'transformers' can move by a major version between two\n"
	    "builds of the same commit, changing numerical results or breaking the model.\n"
	    "  bad:  RUN pip install --no-cache-dir torch transformers\n"
	    "  good: RUN pip install --no-cache-dir torch==2.3.1 transformers==4.41.2\n"
	    "  good: RUN pip install --no-cache-dir -r requirements.lock",
	},
    [R_PIP_CACHE] =
	{
	    "PL008",
	    "pip-install-cache",
	    PLAIT_LINT_WARNING,
	    "pip keeps downloaded wheels in ~/.cache/pip: for ML wheels that is gigabytes in the "
	    "layer",
	    "add --no-cache-dir, or RUN --mount=type=cache,target=/root/.cache/pip",
	    "pip caches every wheel it downloads. With torch and CUDA wheels the cache alone can\n"
	    "add several gigabytes to the image.\n"
	    "  bad:  RUN pip install torch==2.3.1\n"
	    "  good: RUN pip install --no-cache-dir torch==2.3.1\n"
	    "  good: RUN --mount=type=cache,target=/root/.cache/pip pip install torch==2.3.1",
	},
    [R_CONDA_CLEAN] =
	{
	    "PL009",
	    "conda-install-no-clean",
	    PLAIT_LINT_WARNING,
	    "conda keeps package tarballs and caches in the layer",
	    "end the same RUN with '&& conda clean -afy'",
	    "conda install leaves the downloaded packages in pkgs/; removing them in a later RUN\n"
	    "does not shrink the image.\n"
	    "  bad:  RUN conda install -y numpy=1.26.4\n"
	    "  good: RUN conda install -y numpy=1.26.4 && conda clean -afy",
	},
    [R_COPY_CONTEXT_EARLY] =
	{
	    "PL010",
	    "copy-context-before-deps",
	    PLAIT_LINT_WARNING,
	    "copying the whole context before installing dependencies reinstalls them on every "
	    "code change",
	    "copy the dependency manifest first, install, then COPY . .",
	    "The build cache reuses a step only when everything it saw is unchanged. After\n"
	    "'COPY . .' any edited source file invalidates the dependency install below it.\n"
	    "  bad:  COPY . /app\n"
	    "        RUN pip install --no-cache-dir -r /app/requirements.txt\n"
	    "  good: COPY requirements.txt /app/\n"
	    "        RUN pip install --no-cache-dir -r /app/requirements.txt\n"
	    "        COPY . /app",
	},
    [R_LARGE_FILE] =
	{
	    "PL011",
	    "large-file-in-context",
	    PLAIT_LINT_WARNING,
	    "large files in the build context (datasets, checkpoints) slow every build and may end "
	    "up in the image",
	    "add the file to .dockerignore; download or mount weights and data at run time",
	    "Everything in the context that .dockerignore does not exclude is read and hashed by\n"
	    "each build, and 'COPY . .' puts it in a layer. Model checkpoints and data sets\n"
	    "belong in a registry, object store or volume.\n"
	    "  fix: echo 'checkpoints/' >> .dockerignore\n"
	    "The size limit is --large-file-size (default 50M).",
	},
    [R_GIT_DIR] =
	{
	    "PL012",
	    "git-dir-in-context",
	    PLAIT_LINT_WARNING,
	    "the .git directory in the context invalidates the cache on every commit and can leak "
	    "history",
	    "add .git to .dockerignore",
	    "Each commit changes .git, so 'COPY . .' never hits the cache, and the repository\n"
	    "history (and anything ever committed to it) can land in the image.\n"
	    "  fix: printf '.git\\n' >> .dockerignore",
	},
    [R_BUILD_TOOLS] =
	{
	    "PL013",
	    "build-tools-in-final-image",
	    PLAIT_LINT_WARNING,
	    "compilers and build tools in the runtime image add size and attack surface",
	    "use a multi-stage build: compile in a builder stage, COPY --from=builder the results",
	    "gcc, make, cmake, clang and nvcc are needed to build wheels or extensions, not to "
	    "run\n"
	    "them. Build in one stage and copy only the artefacts into a slim final stage.\n"
	    "  bad:  FROM python:3.11-slim\n"
	    "        RUN apt-get install -y build-essential && pip wheel ...\n"
	    "  good: FROM python:3.11 AS builder\n"
	    "        RUN pip wheel --wheel-dir /wheels -r requirements.txt\n"
	    "        FROM python:3.11-slim\n"
	    "        COPY --from=builder /wheels /wheels",
	},
    [R_CUDA_DEVEL] =
	{
	    "PL014",
	    "cuda-devel-final-image",
	    PLAIT_LINT_WARNING,
	    "a CUDA -devel image carries the whole toolkit (gigabytes) that inference and training "
	    "at run time do not need",
	    "build in a -devel stage and run from the matching -runtime or -base image",
	    "The -devel images add nvcc, headers and static libraries on top of -runtime.\n"
	    "  bad:  FROM nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04\n"
	    "  good: FROM nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04 AS build\n"
	    "        ...\n"
	    "        FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04\n"
	    "        COPY --from=build /opt/app /opt/app",
	},
    [R_ADD_LOCAL] =
	{
	    "PL015",
	    "add-local-file",
	    PLAIT_LINT_WARNING,
	    "ADD of a local file that is not a tar archive does what COPY does, with surprises",
	    "use COPY; keep ADD for local tar archives to extract",
	    "ADD extracts local tar archives and fetches URLs; for anything else it is COPY with\n"
	    "more magic. COPY says what happens.\n"
	    "  bad:  ADD app.py /app/\n"
	    "  good: COPY app.py /app/\n"
	    "  good: ADD rootfs.tar.gz /",
	},
    [R_ADD_URL] =
	{
	    "PL016",
	    "add-url-no-checksum",
	    PLAIT_LINT_WARNING,
	    "a file downloaded by ADD without a checksum can change or be tampered with",
	    "add --checksum=sha256:<digest> to the ADD",
	    "The server can serve different bytes tomorrow; --checksum makes the build fail\n"
	    "instead of silently using them.\n"
	    "  bad:  ADD https://example.com/model.onnx /models/\n"
	    "  good: ADD "
	    "--checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d "
	    "\\\n"
	    "            https://example.com/model.onnx /models/",
	},
    [R_ROOT_USER] =
	{
	    "PL017",
	    "runs-as-root",
	    PLAIT_LINT_WARNING,
	    "the container runs as root: a compromise of the process is root in the container",
	    "create a user and end the final stage with USER <name>",
	    "Without USER the image runs as root (uid 0). Serving containers rarely need it.\n"
	    "  bad:  (no USER in the final stage)\n"
	    "  good: RUN useradd --create-home --uid 10001 app\n"
	    "        USER app",
	},
    [R_SECRET_ENV] =
	{
	    "PL018",
	    "secret-in-arg-env",
	    PLAIT_LINT_ERROR,
	    "ARG and ENV values are stored in the image config and history: secrets there leak",
	    "pass secrets with RUN --mount=type=secret,id=NAME and plait build --secret "
	    "id=NAME,src=FILE",
	    "ENV values are in the image config for anyone who can pull it, and build args show "
	    "up\n"
	    "in the history of every RUN step that uses them.\n"
	    "  bad:  ARG HF_TOKEN\n"
	    "        RUN huggingface-cli download --token $HF_TOKEN org/model\n"
	    "  good: RUN --mount=type=secret,id=hf_token \\\n"
	    "            huggingface-cli download --token \"$(cat /run/secrets/hf_token)\" "
	    "org/model",
	},
    [R_RUN_CD] =
	{
	    "PL019",
	    "run-cd",
	    PLAIT_LINT_INFO,
	    "'cd' in a RUN lasts for that RUN only and hides the working directory",
	    "use WORKDIR /path",
	    "WORKDIR sets the directory for every later instruction and documents it.\n"
	    "  bad:  RUN cd /app && python setup.py build\n"
	    "  good: WORKDIR /app\n"
	    "        RUN python setup.py build\n"
	    "A cd inside a subshell, (cd x && make), is not reported.",
	},
    [R_ENTRYPOINT_SHELL] =
	{
	    "PL020",
	    "entrypoint-shell-form",
	    PLAIT_LINT_WARNING,
	    "a shell-form ENTRYPOINT runs under /bin/sh -c: the process does not get SIGTERM and "
	    "ignores CMD",
	    "use the exec form: ENTRYPOINT [\"python\", \"serve.py\"]",
	    "With the shell form the shell is PID 1; 'docker stop' signals reach the shell, not\n"
	    "your server, which is killed after the grace period. CMD and 'run' arguments are\n"
	    "ignored too.\n"
	    "  bad:  ENTRYPOINT python serve.py\n"
	    "  good: ENTRYPOINT [\"python\", \"serve.py\"]",
	},
    [R_TRAIN_SERVE] =
	{
	    "PL021",
	    "train-serve-one-target",
	    PLAIT_LINT_WARNING,
	    "training and serving built into one target: the serving image carries the training "
	    "stack",
	    "give training and serving their own stages from a shared base; build each with "
	    "--target",
	    "Training needs data loaders, experiment tracking and often compilers; serving needs "
	    "a\n"
	    "small, locked-down runtime. One target holding both ships the training stack to\n"
	    "production.\n"
	    "  bad:  FROM base AS app\n"
	    "        RUN pip install -r requirements-train.txt -r requirements-serve.txt\n"
	    "        CMD [\"python\", \"serve.py\"]\n"
	    "  good: FROM base AS train\n"
	    "        ...\n"
	    "        FROM base AS serve\n"
	    "        CMD [\"python\", \"serve.py\"]",
	},
};

const struct plait_lint_rule *plait_lint_rules(size_t *n)
{
	if (n)
		*n = R_COUNT;
	return rules;
}

const struct plait_lint_rule *plait_lint_rule_lookup(const char *id_or_name)
{
	if (!id_or_name)
		return NULL;
	for (size_t i = 0; i < R_COUNT; i++)
		if (strcasecmp(rules[i].id, id_or_name) == 0 || streq(rules[i].name, id_or_name))
			return &rules[i];
	return NULL;
}

static const char *const severity_names[] = {
    [PLAIT_LINT_INFO] = "info",
    [PLAIT_LINT_WARNING] = "warning",
    [PLAIT_LINT_ERROR] = "error",
};

const char *plait_lint_severity_name(enum plait_lint_severity s)
{
	if ((unsigned)s >= ARRAY_SIZE(severity_names))
		return "?";
	return severity_names[s];
}

int plait_lint_severity_parse(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(severity_names); i++)
		if (streq(s, severity_names[i]))
			return (int)i;
	return -1;
}
