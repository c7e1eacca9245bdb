/**
 * Signing in, signing up and keeping the session across reloads (localStorage). Works against
 * any homeserver: the base URL comes from the login form (default: the page's origin).
 */
import { createClient, MatrixError, type MatrixClient } from 'matrix-js-sdk';

const STORAGE_KEY = 'hearth.session';

export interface StoredSession {
  baseUrl: string;
  userId: string;
  accessToken: string;
  deviceId: string;
}

export function loadSession(): StoredSession | undefined {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return undefined;
    const parsed = JSON.parse(raw) as Partial<StoredSession>;
    if (parsed.baseUrl && parsed.userId && parsed.accessToken && parsed.deviceId) return parsed as StoredSession;
  } catch {
    // a damaged entry is the same as none
  }
  return undefined;
}

export function saveSession(session: StoredSession): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  localStorage.removeItem(STORAGE_KEY);
}

/** Accepts `example.org`, `https://example.org/` …; returns a URL without trailing slash. */
export function normaliseBaseUrl(input: string): string {
  let url = input.trim();
  if (url === '') url = location.origin;
  if (!/^https?:\/\//i.test(url)) url = `https://${url}`;
  return url.replace(/\/+$/, '');
}

/** A sentence a person understands, for every way signing in or up can fail. */
export function describeError(error: unknown, baseUrl?: string): string {
  if (error instanceof MatrixError) {
    switch (error.errcode) {
      case 'M_FORBIDDEN':
        return error.httpStatus === 403 && /password|login|credential/i.test(error.message)
          ? 'Wrong username or password.'
          : error.data.error ?? 'Not allowed.';
      case 'M_USER_IN_USE':
        return 'That username is already taken. Try another one.';
      case 'M_INVALID_USERNAME':
        return 'Usernames may only contain lowercase letters, digits and . _ = - /';
      case 'M_WEAK_PASSWORD':
        return 'That password is too weak. Use a longer one.';
      case 'M_LIMIT_EXCEEDED':
        return 'Too many attempts. Wait a moment and try again.';
      case 'M_USER_DEACTIVATED':
        return 'This account has been deactivated.';
      case 'M_UNAUTHORIZED':
        return error.data.error ?? 'The registration token is not valid.';
      default:
        return error.data.error ?? error.message;
    }
  }
  if (error instanceof TypeError || (error instanceof Error && error.name === 'ConnectionError')) {
    return `Can't reach the server${baseUrl ? ` at ${baseUrl}` : ''}. Check the address and your connection.`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Checks that a Matrix server answers at baseUrl (a friendlier error than a failed login). */
async function checkServer(baseUrl: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(`${baseUrl}/_matrix/client/versions`);
  } catch {
    throw new Error(`Can't reach the server at ${baseUrl}. Check the address and your connection.`);
  }
  if (!response.ok) throw new Error(`${baseUrl} does not look like a Matrix server (HTTP ${response.status}).`);
}

export async function login(baseUrlInput: string, username: string, password: string): Promise<StoredSession> {
  const baseUrl = normaliseBaseUrl(baseUrlInput);
  await checkServer(baseUrl);
  const client = createClient({ baseUrl });
  try {
    const response = await client.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: username.trim() },
      password,
      initial_device_display_name: 'Hearth web',
    });
    return { baseUrl, userId: response.user_id, accessToken: response.access_token, deviceId: response.device_id };
  } catch (error) {
    if (error instanceof MatrixError && error.errcode === 'M_FORBIDDEN') throw new Error('Wrong username or password.');
    throw new Error(describeError(error, baseUrl));
  }
}

/** Thrown when the server wants a registration token and none was given. */
export class TokenRequiredError extends Error {
  constructor() {
    super('This server asks for a registration token.');
  }
}

interface UiaFlows {
  session?: string;
  flows?: { stages: string[] }[];
  completed?: string[];
}

/**
 * Registers through user-interactive auth: the stages this client can do are the dummy stage
 * and the registration token (m.login.registration_token).
 */
export async function register(
  baseUrlInput: string,
  username: string,
  password: string,
  token?: string,
): Promise<StoredSession> {
  const baseUrl = normaliseBaseUrl(baseUrlInput);
  await checkServer(baseUrl);
  const client = createClient({ baseUrl });
  const body: Record<string, unknown> = {
    username: username.trim().toLowerCase(),
    password,
    initial_device_display_name: 'Hearth web',
  };
  for (let step = 0; step < 5; step++) {
    try {
      const response = await client.registerRequest(body as never);
      if (!response.access_token || !response.device_id) throw new Error('The server registered the account but did not sign in.');
      return { baseUrl, userId: response.user_id, accessToken: response.access_token, deviceId: response.device_id };
    } catch (error) {
      if (!(error instanceof MatrixError) || error.httpStatus !== 401 || !error.data.flows) {
        throw new Error(describeError(error, baseUrl));
      }
      if (step > 0 && error.errcode) throw new Error(describeError(error, baseUrl));
      const uia = error.data as UiaFlows;
      const stage = nextStage(uia, token !== undefined && token !== '');
      if (stage === 'm.login.registration_token') {
        if (!token) throw new TokenRequiredError();
        body.auth = { type: stage, token: token.trim(), session: uia.session };
      } else if (stage === 'm.login.dummy') {
        body.auth = { type: stage, session: uia.session };
      } else {
        throw new Error('This server needs a sign-up step Hearth cannot do (for example e-mail or captcha). Sign up with another client.');
      }
    }
  }
  throw new Error('Sign-up did not finish. Try again.');
}

function nextStage(uia: UiaFlows, haveToken: boolean): string | undefined {
  const done = new Set(uia.completed ?? []);
  const supported = new Set(['m.login.dummy', 'm.login.registration_token']);
  const flows = (uia.flows ?? []).filter((f) => f.stages.every((s) => supported.has(s)));
  // Prefer a flow without a token when we have none, one with it otherwise.
  flows.sort((a, b) => Number(a.stages.includes('m.login.registration_token') !== haveToken) - Number(b.stages.includes('m.login.registration_token') !== haveToken));
  const flow = flows[0];
  if (!flow) return uia.flows?.[0]?.stages.find((s) => !done.has(s)) ?? 'unsupported';
  return flow.stages.find((s) => !done.has(s));
}

export function clientFor(session: StoredSession): MatrixClient {
  return createClient({
    baseUrl: session.baseUrl,
    userId: session.userId,
    accessToken: session.accessToken,
    deviceId: session.deviceId,
    timelineSupport: true,
  });
}
