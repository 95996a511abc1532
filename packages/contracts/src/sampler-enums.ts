/**
 * The API's Sampler and TimestepSpacing enums and the sampler names used inside the platform
 * (job records, queue payloads, manifests), mapped both ways in one place.
 */
import { Sampler, TimestepSpacing } from "./gen/rebeca/v1/jobs.js";
import type { SamplerName, SpacingName } from "./jobs.js";

const SAMPLER_ENUM: Record<SamplerName, Sampler> = {
  ddim: Sampler.SAMPLER_DDIM,
  ddpm: Sampler.SAMPLER_DDPM,
  dpmpp_2m: Sampler.SAMPLER_DPMPP_2M,
  dpmpp_2m_sde: Sampler.SAMPLER_DPMPP_2M_SDE,
};
const SPACING_ENUM: Record<SpacingName, TimestepSpacing> = {
  linspace: TimestepSpacing.TIMESTEP_SPACING_LINSPACE,
  leading: TimestepSpacing.TIMESTEP_SPACING_LEADING,
  trailing: TimestepSpacing.TIMESTEP_SPACING_TRAILING,
};
const nameOf = <N extends string, E>(table: Record<N, E>, value: E): N | null => (Object.entries(table) as [N, E][]).find(([, v]) => v === value)?.[0] ?? null;

export const toProtoSampler = (s: SamplerName): Sampler => SAMPLER_ENUM[s];
/** The sampler a request names; null for UNSPECIFIED (the model's default) and unknown values. */
export const fromProtoSampler = (s: Sampler): SamplerName | null => nameOf(SAMPLER_ENUM, s);
/** Records written before the spacing option carry none: they ran the linspace grid. */
export const toProtoSpacing = (s: SpacingName | undefined): TimestepSpacing => SPACING_ENUM[s ?? "linspace"];
/** The spacing a request names; null for UNSPECIFIED (the model's default) and unknown values. */
export const fromProtoSpacing = (s: TimestepSpacing): SpacingName | null => nameOf(SPACING_ENUM, s);
