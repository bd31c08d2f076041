#!/usr/bin/env bash
# test_k8s.sh: the Kubernetes manifests in docker/k8s/, without a cluster. Every manifest
# parses (duplicate keys refused) into objects of known kinds, all listed in
# kustomization.yaml; every image is the one docker/Dockerfile builds (the compose file's
# tag) or an allow-listed official image with a fixed tag; every environment variable of
# the cdpilot container is a setting of daemon/config.c's table; the cdpilot Deployment runs
# SCHEDULE=redis against a REDIS_URL that names a Service of the manifests on its port, has
# its liveness probe on /healthz and readiness on /readyz (routes daemon/endpoints.c serves)
# at the port of METRICS_ADDR, memory and CPU limits, a memory-backed /dev/shm, and the
# targets file it is given on a ConfigMap key whose content is docker/targets/targets.json;
# Services, the PodDisruptionBudget and the HorizontalPodAutoscaler select or name what
# exists, and the autoscaling metric (also those README.md names) is in
# docker/metric-names.txt. With kubectl on PATH, `kubectl kustomize` must build the
# directory too (offline; kubectl is not a Debian package, so it is optional). Then each check
# is run on a broken copy and must fail.
# shellcheck source=tests/docker/lib.sh
source "$(dirname "$0")/lib.sh"

K8S_DIR=$DOCKER_DIR/k8s

# Official images the manifests may pull (repository names, without tag).
ALLOWED_IMAGES=redis

# check_k8s DIR: the checks above on the manifests in DIR.
check_k8s() {
	local dir=$1 out
	out=$("$PYTHON3" - "$dir" "$REPO" "$ALLOWED_IMAGES" <<'PY' 2>&1
import glob, json, os, re, sys
try:
    import yaml
except ImportError:
    sys.exit("python3-yaml is not installed (Debian package python3-yaml)")

d, repo, allowed = sys.argv[1], sys.argv[2], sys.argv[3].split()
def fail(m): print("FAIL " + m)

class Strict(yaml.SafeLoader):
    pass
def mapping(loader, node, deep=False):
    seen = set()
    for k, _ in node.value:
        key = loader.construct_object(k, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, "duplicate key %r" % (key,), k.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)
Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)

KINDS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Service": "v1", "ConfigMap": "v1",
         "PodDisruptionBudget": "policy/v1", "HorizontalPodAutoscaler": "autoscaling/v2"}
objs, files = [], sorted(os.path.basename(f) for f in glob.glob(d + "/*.yaml"))
for f in files:
    if f == "kustomization.yaml":
        continue
    try:
        docs = [x for x in yaml.load_all(open(os.path.join(d, f)), Loader=Strict) if x is not None]
    except (OSError, yaml.YAMLError) as e:
        fail("%s does not parse: %s" % (f, e)); continue
    for o in docs:
        if not isinstance(o, dict) or not (o.get("metadata") or {}).get("name"):
            fail("%s: a document without metadata.name" % f); continue
        k = o.get("kind")
        if KINDS.get(k) != o.get("apiVersion"):
            fail("%s: %s %s: kind/apiVersion %s/%s is not one of %s" % (f, k, o["metadata"]["name"], k, o.get("apiVersion"), KINDS))
            continue
        o["_file"] = f
        objs.append(o)

try:
    kz = yaml.load(open(os.path.join(d, "kustomization.yaml")), Loader=Strict) or {}
except (OSError, yaml.YAMLError) as e:
    kz = {}; fail("kustomization.yaml: %s" % e)
res = kz.get("resources") or []
for f in files:
    if f != "kustomization.yaml" and f not in res:
        fail("kustomization.yaml does not list %s" % f)
for f in res:
    if f not in files:
        fail("kustomization.yaml lists %s, which does not exist" % f)

def by(kind): return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}
def pod_labels(w): return ((w.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
def containers(w): return ((w.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
def selects(sel, labels): return bool(sel) and all(labels.get(k) == v for k, v in sel.items())
workloads = list(by("Deployment").values()) + list(by("StatefulSet").values())

# The settings daemon/config.c knows, the image's own environment, routes, compose's tag.
cfg = open(os.path.join(repo, "daemon/config.c")).read()
known_env = set(re.findall(r'^\s*\{ "([A-Z][A-Z0-9_]*)", "--', cfg, re.M)) | {"HOME", "TMPDIR"}
if len(known_env) < 20: fail("no settings table in daemon/config.c")
routes = set(re.findall(r'httpd_route\([^,]+, "([^"]+)"', open(os.path.join(repo, "daemon/endpoints.c")).read()))
compose = yaml.safe_load(open(os.path.join(repo, "docker/docker-compose.yml")))
built = compose["services"]["cdpilot"]["image"]
metric_names = {re.sub(r"#.*", "", l).strip() for l in open(os.path.join(repo, "docker/metric-names.txt"))} - {""}

for w in workloads:
    wn = "%s %s" % (w["kind"], w["metadata"]["name"])
    sel = (w["spec"].get("selector") or {}).get("matchLabels")
    if not selects(sel, pod_labels(w)):
        fail("%s: selector %s does not match its pod labels" % (wn, sel))
    for c in containers(w):
        img = c.get("image", "")
        repo_name = re.sub(r"^(docker\.io/)?(library/)?", "", re.sub(r"[:@].*$", "", img))
        tag = re.search(r"[:@].*$", img)
        if img != built:
            if repo_name not in allowed:
                fail("%s: image '%s' is neither %s (built by docker/Dockerfile) nor an allowed official image (%s)" % (wn, img, built, " ".join(allowed)))
            elif not tag or tag.group(0) == ":latest":
                fail("%s: image '%s' needs a fixed tag, not latest" % (wn, img))

deps = [w for w in by("Deployment").values() if any(c.get("image") == built for c in containers(w))]
if len(deps) != 1:
    fail("expected one Deployment running %s, found %d" % (built, len(deps)))
    deps = []
services = by("Service")
for w in deps:
    c = next(c for c in containers(w) if c.get("image") == built)
    env = {}
    for e in c.get("env") or []:
        n = e.get("name", "")
        if n not in known_env:
            fail("cdpilot: environment variable %s is not a setting in daemon/config.c" % n)
        env[n] = e.get("value") if "value" in e else e.get("valueFrom")
    if env.get("SCHEDULE") != "redis":
        fail("cdpilot: SCHEDULE is '%s', expected redis" % env.get("SCHEDULE"))
    m = re.match(r"^redis://([^:/@]+)(?::(\d+))?", env.get("REDIS_URL") or "")
    if not m:
        fail("cdpilot: REDIS_URL is '%s', expected redis://SERVICE:PORT/DB" % env.get("REDIS_URL"))
    elif m.group(1) not in services:
        fail("cdpilot: REDIS_URL '%s' names no Service of the manifests" % env["REDIS_URL"])
    elif int(m.group(2) or 6379) not in [p.get("port") for p in services[m.group(1)]["spec"].get("ports", [])]:
        fail("cdpilot: REDIS_URL '%s': Service %s has no port %s" % (env["REDIS_URL"], m.group(1), m.group(2) or 6379))
    if w["spec"].get("replicas", 1) < 2:
        fail("cdpilot: replicas %s: a shared schedule needs at least 2" % w["spec"].get("replicas", 1))
    addr = env.get("METRICS_ADDR") or "0.0.0.0:9464"  # the image's ENV
    mport = int(addr.rsplit(":", 1)[1])
    if not addr.startswith(("0.0.0.0:", "[::]:")):
        fail("cdpilot: METRICS_ADDR '%s' is not on every interface: the kubelet cannot probe it" % addr)
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    if mport not in ports.values():
        fail("cdpilot: no containerPort %d (METRICS_ADDR)" % mport)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = (c.get(probe) or {}).get("httpGet") or {}
        if g.get("path") != path:
            fail("cdpilot: %s path is '%s', expected %s" % (probe, g.get("path"), path))
        if g.get("path") and g["path"] not in routes:
            fail("cdpilot: %s path %s is not a route of daemon/endpoints.c" % (probe, g["path"]))
        p = g.get("port")
        if (ports.get(p) if isinstance(p, str) else p) != mport:
            fail("cdpilot: %s port %s is not METRICS_ADDR's port %d" % (probe, p, mport))
    lim = (c.get("resources") or {}).get("limits") or {}
    for r in ("memory", "cpu"):
        if r not in lim:
            fail("cdpilot: no %s limit" % r)
    vols = {v["name"]: v for v in w["spec"]["template"]["spec"].get("volumes") or []}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
    shm = vols.get((mounts.get("/dev/shm") or {}).get("name"), {})
    if (shm.get("emptyDir") or {}).get("medium") != "Memory":
        fail("cdpilot: /dev/shm is not a memory-backed emptyDir (Chromium needs more than 64 MB)")
    args = c.get("args") or []
    tpath = args[args.index("--targets") + 1] if "--targets" in args[:-1] else env.get("TARGETS_FILE")
    if not tpath:
        fail("cdpilot: no --targets in args and no TARGETS_FILE")
    else:
        mdir, key = os.path.dirname(tpath), os.path.basename(tpath)
        m = mounts.get(mdir)
        cmname = ((vols.get(m["name"]) or {}).get("configMap") or {}).get("name") if m else None
        cm = by("ConfigMap").get(cmname)
        if m and m.get("subPath"):
            fail("cdpilot: the targets mount uses subPath: ConfigMap updates would never reach the pod")
        if not cm:
            fail("cdpilot: the targets file %s is not on a ConfigMap of the manifests mounted at %s" % (tpath, mdir))
        elif key not in (cm.get("data") or {}):
            fail("cdpilot: ConfigMap %s has no key %s" % (cmname, key))
        else:
            try:
                mine = json.loads(cm["data"][key])
            except ValueError as e:
                mine = None; fail("ConfigMap %s: %s is not JSON: %s" % (cmname, key, e))
            ref = json.load(open(os.path.join(repo, "docker/targets/targets.json")))
            if mine is not None and mine != ref:
                fail("ConfigMap %s: %s differs from docker/targets/targets.json" % (cmname, key))

for s in services.values():
    sel = s["spec"].get("selector")
    ws = [w for w in workloads if selects(sel, pod_labels(w))]
    if not ws:
        fail("Service %s selects no workload of the manifests" % s["metadata"]["name"])
    for p in s["spec"].get("ports", []):
        t = p.get("targetPort", p.get("port"))
        for w in ws:
            cp = [x for c in containers(w) for x in c.get("ports") or []]
            if not any(t in (x.get("name"), x.get("containerPort")) for x in cp):
                fail("Service %s: targetPort %s is no port of %s" % (s["metadata"]["name"], t, w["metadata"]["name"]))
pdbs = by("PodDisruptionBudget")
if not any(selects((p["spec"].get("selector") or {}).get("matchLabels"), pod_labels(w)) for p in pdbs.values() for w in deps):
    fail("no PodDisruptionBudget selects the cdpilot pods")
for h in by("HorizontalPodAutoscaler").values():
    ref = h["spec"].get("scaleTargetRef") or {}
    if ref.get("name") not in by(ref.get("kind", "")):
        fail("HorizontalPodAutoscaler %s scales %s %s, which the manifests do not have" % (h["metadata"]["name"], ref.get("kind"), ref.get("name")))
    for m in h["spec"].get("metrics") or []:
        name = ((m.get(m.get("type", "").lower()) or {}).get("metric") or {}).get("name")
        if name not in metric_names:
            fail("HorizontalPodAutoscaler %s: metric %s is not in metric-names.txt" % (h["metadata"]["name"], name))
if not by("HorizontalPodAutoscaler"):
    fail("no HorizontalPodAutoscaler")
readme = os.path.join(d, "README.md")
if os.path.exists(readme):
    for n in sorted(set(re.findall(r"\bcdpilot_[a-z0-9_]+", open(readme).read()))):
        if n not in metric_names:
            fail("README.md: metric %s is not in metric-names.txt" % n)
else:
    fail("no README.md in %s" % d)
PY
	) || { fail "check_k8s: $out"; return 0; }
	while read -r kind msg; do
		[ "$kind" = FAIL ] && fail "$msg"
	done <<<"$out"
	if command -v kubectl >/dev/null 2>&1; then
		out=$(timeout 60 kubectl kustomize "$dir" 2>&1) || fail "kubectl kustomize $dir: $out"
	fi
	return 0
}

echo "== the real files"
check_k8s "$K8S_DIR"
[ "$fails" -eq 0 ] && echo "ok: docker/k8s"

echo "== broken copies must fail"
# broken NAME FILE SED-SCRIPT: a copy of docker/k8s with SED-SCRIPT applied to FILE.
broken() {
	local d=$TMP/$1
	cp -r "$K8S_DIR" "$d"
	sed -e "$3" "$K8S_DIR/$2" >"$d/$2"
	cmp -s "$K8S_DIR/$2" "$d/$2" && echo "FATAL: sed '$3' changed nothing" >&2 && exit 1
	echo "$d"
}
self_check "unknown env var" "environment variable BOGUS_SETTING is not a setting" \
	check_k8s "$(broken env cdpilot.yaml 's/- name: LOG_FORMAT/- name: BOGUS_SETTING/')"
self_check "not SCHEDULE=redis" "SCHEDULE is 'local'" \
	check_k8s "$(broken sched cdpilot.yaml '/name: SCHEDULE$/{n;s/value: redis/value: local/}')"
self_check "REDIS_URL naming no Service" "names no Service" \
	check_k8s "$(broken url cdpilot.yaml 's|redis://redis:6379/0|redis://cache:6379/0|')"
self_check "REDIS_URL on a wrong port" "Service redis has no port 6380" \
	check_k8s "$(broken uport cdpilot.yaml 's|redis://redis:6379/0|redis://redis:6380/0|')"
self_check "liveness on /readyz" "livenessProbe path is '/readyz'" \
	check_k8s "$(broken live cdpilot.yaml '0,/path: \/healthz/s//path: \/readyz/')"
self_check "probe on a route cdpilot lacks" "path /ready is not a route" \
	check_k8s "$(broken route cdpilot.yaml 's|path: /readyz|path: /ready|')"
self_check "probe on another port" "port 9465 is not METRICS_ADDR's port 9464" \
	check_k8s "$(broken pport cdpilot.yaml '0,/port: metrics$/s//port: 9465/')"
self_check "METRICS_ADDR on loopback" "METRICS_ADDR '127.0.0.1:9464' is not on every interface" \
	check_k8s "$(broken addr cdpilot.yaml 's/value: 0.0.0.0:9464/value: 127.0.0.1:9464/')"
self_check "image not allowed" "image 'evilcorp/redis:7' is neither" \
	check_k8s "$(broken img redis.yaml 's|image: redis:7-bookworm|image: evilcorp/redis:7|')"
self_check "untagged image" "needs a fixed tag" \
	check_k8s "$(broken tag redis.yaml 's|image: redis:7-bookworm|image: redis|')"
self_check "no memory limit" "no memory limit" \
	check_k8s "$(broken mem cdpilot.yaml '/limits:/,/memory: 2Gi/{/memory: 2Gi/d}')"
self_check "no /dev/shm" "/dev/shm is not a memory-backed emptyDir" \
	check_k8s "$(broken shm cdpilot.yaml '/medium: Memory/d')"
self_check "targets ConfigMap drifted" "differs from docker/targets/targets.json" \
	check_k8s "$(broken cm targets-configmap.yaml 's/"interval_seconds": 900/"interval_seconds": 901/')"
self_check "targets file on no ConfigMap" "is not on a ConfigMap of the manifests" \
	check_k8s "$(broken cmname cdpilot.yaml 's/name: cdpilot-targets/name: cdpilot-target/')"
self_check "Service targetPort missing" "targetPort redis-port is no port" \
	check_k8s "$(broken svc redis.yaml 's/targetPort: redis/targetPort: redis-port/')"
self_check "PDB selecting nothing" "no PodDisruptionBudget selects" \
	check_k8s "$(broken pdb cdpilot.yaml '$s/app.kubernetes.io\/name: cdpilot/app.kubernetes.io\/name: cdpilots/')"
self_check "HPA on an unknown metric" "metric cdpilot_queue_len is not in metric-names.txt" \
	check_k8s "$(broken hpa hpa.yaml 's/name: cdpilot_queue_depth/name: cdpilot_queue_len/')"
self_check "HPA scaling nothing" "scales Deployment cdpilot-x" \
	check_k8s "$(broken hpat hpa.yaml '/kind: Deployment/{n;s/name: cdpilot/name: cdpilot-x/}')"
self_check "manifest not in kustomization" "kustomization.yaml does not list hpa.yaml" \
	check_k8s "$(broken kz kustomization.yaml '/- hpa.yaml/d')"
self_check "duplicate key" "duplicate key 'image'" \
	check_k8s "$(broken dup redis.yaml 's/^\( *\)image: redis:7-bookworm/&\n\1image: redis:7-bookworm/')"
self_check "wrong apiVersion" "kind/apiVersion PodDisruptionBudget/policy/v1beta1" \
	check_k8s "$(broken api cdpilot.yaml 's|apiVersion: policy/v1|apiVersion: policy/v1beta1|')"

finish test_k8s
