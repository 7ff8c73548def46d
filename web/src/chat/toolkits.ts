// Display names of Composio toolkit slugs, matching the engine's tool labels.

/** Returns the product name of a toolkit slug: `slack` → `Slack`, `googlecalendar` → `Google Calendar`. */
export function toolkitName(slug: string): string {
  const known: Record<string, string> = {
    github: 'GitHub',
    gmail: 'Gmail',
    googlecalendar: 'Google Calendar',
    googledocs: 'Google Docs',
    googledrive: 'Google Drive',
    googlesheets: 'Google Sheets',
    hubspot: 'HubSpot',
    linkedin: 'LinkedIn',
    quickbooks: 'QuickBooks',
  };
  return known[slug] ?? slug.charAt(0).toUpperCase() + slug.slice(1);
}
