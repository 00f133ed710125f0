// Pool tokens carry the control plane's URL, as Scalr's agent tokens do,
// so `docker run -e SCALR_AGENT_TOKEN=… outpost/agent run` needs no URL:
// `opp_<base64url of the URL>.<secret>`. The URL is not secret; the part
// after the dot is, and the whole token is what the server stores hashed.

export function poolTokenWithUrl(url: string, secret: string): string {
  return `opp_${Buffer.from(url, 'utf8').toString('base64url')}.${secret}`;
}

/** The control plane URL a pool token carries, if it carries a valid one. */
export function serverUrlOfPoolToken(token: string): string | undefined {
  const match = /^opp_([A-Za-z0-9_-]+)\.[A-Za-z0-9]+$/.exec(token.trim());
  if (!match?.[1]) return undefined;
  try {
    const url = new URL(Buffer.from(match[1], 'base64url').toString('utf8'));
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.toString().replace(/\/+$/, '') : undefined;
  } catch {
    return undefined;
  }
}
