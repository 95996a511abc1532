import type { Obj } from "./support.js";

// apiVersion -> module with the model classes (named by kind).
const MODULES: Record<string, () => Promise<Record<string, unknown>>> = {
  v1: () => import("kubernetes-models/v1"),
  "apps/v1": () => import("kubernetes-models/apps/v1"),
  "batch/v1": () => import("kubernetes-models/batch/v1"),
  "policy/v1": () => import("kubernetes-models/policy/v1"),
  "autoscaling/v2": () => import("kubernetes-models/autoscaling/v2"),
  "networking.k8s.io/v1": () => import("kubernetes-models/networking.k8s.io/v1"),
  "keda.sh/v1alpha1": () => import("@kubernetes-models/keda/keda.sh/v1alpha1"),
  "monitoring.coreos.com/v1": () => import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1"),
};

type Model = new (data: Obj) => { validate(): void };

/** Validates one rendered object against its schema; throws with the object's name on failure. */
export async function validateObject(obj: Obj): Promise<void> {
  const load = MODULES[obj.apiVersion];
  if (!load) throw new Error(`no schema for apiVersion ${obj.apiVersion} (${obj.kind}/${obj.metadata?.name})`);
  const Cls = (await load())[obj.kind] as Model | undefined;
  if (!Cls) throw new Error(`no model for ${obj.apiVersion} ${obj.kind}`);
  // kustomize v5 folds long base64 Secret values over lines; the API server's base64 decoder
  // skips newlines, the schema's "byte" format does not.
  if (obj.kind === "Secret" && obj.data) {
    obj = { ...obj, data: Object.fromEntries(Object.entries(obj.data as Record<string, string>).map(([k, v]) => [k, v.replace(/\n/g, "")])) };
  }
  try {
    new Cls(obj).validate();
  } catch (err) {
    throw new Error(`${obj.kind}/${obj.metadata?.name}: ${(err as Error).message}`);
  }
}
