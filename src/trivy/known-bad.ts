// Trivy releases the scanner refuses to run. The one place this list is kept: the local `trivy version` is checked
// against it (database.ts prepareTrivy, check/trivy.ts), and so will an external Trivy server's version be.

export interface KnownBadRelease {
  /** Exact versions as `trivy version` prints them (without a leading "v"). */
  versions: readonly string[];
  advisory: string;
  cve: string;
  url: string;
  /** What happened, in a few words for the log line. */
  summary: string;
}

/**
 * Source: GitHub advisory GHSA-69fq-xp46-6x23 (CVE-2026-33634) of aquasecurity/trivy, the March 2026 supply-chain
 * compromise: on 2026-03-19 a stolen release credential published a malicious v0.69.4 (binaries and images), and on
 * 2026-03-22 malicious v0.69.5 and v0.69.6 images were pushed to Docker Hub; they carry a credential stealer. Read
 * through downstream records that cite it (future-architect/vuls #2489, opendatahub-io/notebooks #3410, nixpkgs
 * #501606, winget-pkgs #350435; ../shared/reference/trivy-incremental-facts.md §7). 0.69.3 is the last release
 * before the incident (the one the image pins).
 */
export const KNOWN_BAD_TRIVY: readonly KnownBadRelease[] = [
  {
    versions: ['0.69.4', '0.69.5', '0.69.6'],
    advisory: 'GHSA-69fq-xp46-6x23',
    cve: 'CVE-2026-33634',
    url: 'https://github.com/aquasecurity/trivy/security/advisories/GHSA-69fq-xp46-6x23',
    summary: 'a malicious release published in the March 2026 supply-chain compromise (a credential stealer)',
  },
];

/**
 * The known-bad release `version` belongs to, if any. A leading "v" and a pre-release or build suffix are ignored
 * ("v0.69.4", "0.69.4-rc1" and "0.69.4+docker" are 0.69.4): a rebuilt or renamed copy of a bad release is still bad.
 */
export function knownBadTrivy(version: string): KnownBadRelease | undefined {
  const match = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(version.trim());
  if (!match) return undefined;
  const core = `${Number(match[1])}.${Number(match[2])}.${Number(match[3])}`;
  return KNOWN_BAD_TRIVY.find((release) => release.versions.includes(core));
}

/** One sentence naming the release and the advisory, for the run's error and the check's blocker. */
export function knownBadMessage(version: string, release: KnownBadRelease): string {
  return (
    `Trivy ${version} is ${release.summary}: ${release.advisory} (${release.cve}, ${release.url}); ` +
    'the scanner refuses to run it'
  );
}

/** What to do about it. */
export const KNOWN_BAD_FIX =
  'install Trivy 0.69.3 (the version the ephor-scanner image ships) or a release the advisory lists as safe, verify ' +
  "its checksum or signature against Aqua's published ones, and rotate every credential the bad binary could read " +
  '(its environment, mounted tokens, the registry pull secrets)';
