// Trivy's JSON report (SchemaVersion 2, Trivy 0.58–0.69): the fields the scanner reads. report-stream.ts reads it,
// refusing anything that is not such a report instead of mistaking it for "no vulnerabilities".

export interface TrivyCvss {
  V2Vector?: string;
  V3Vector?: string;
  V40Vector?: string;
  V2Score?: number;
  V3Score?: number;
  V40Score?: number;
}

export interface TrivyVulnerability {
  VulnerabilityID?: string;
  PkgName?: string;
  InstalledVersion?: string;
  FixedVersion?: string;
  Status?: string;
  Severity?: string;
  SeveritySource?: string;
  Title?: string;
  Description?: string;
  PrimaryURL?: string;
  PublishedDate?: string;
  References?: string[];
  CVSS?: Record<string, TrivyCvss>;
}

export interface TrivyResult {
  Target?: string;
  Class?: string;
  Type?: string;
  Vulnerabilities?: TrivyVulnerability[] | null;
}

export interface TrivyReport {
  SchemaVersion: number;
  ArtifactName?: string;
  Metadata?: {
    OS?: { Family?: string; Name?: string };
    RepoDigests?: string[];
    ImageConfig?: { created?: string };
  };
  Results?: TrivyResult[] | null;
}

export class InvalidReportError extends Error {}
