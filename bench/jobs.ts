import type { JobClient } from "@rebeca/devstack";
import type { Job } from "@rebeca/contracts/grpc";

/** Every job of the client's tenant, page by page. */
export async function listAllJobs(client: JobClient): Promise<Job[]> {
  const jobs: Job[] = [];
  let token = "";
  do {
    const page = await client.listJobs({ pageSize: 100, pageToken: token });
    jobs.push(...page.jobs);
    token = page.nextPageToken;
  } while (token);
  return jobs;
}
