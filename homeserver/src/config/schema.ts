/**
 * The JSON Schema of homeserver.yaml. Key names and meanings follow Synapse's homeserver.yaml
 * wherever Synapse has the option, so an admin's existing file starts Hearth. Every key here is
 * documented in config.example.yaml; a key not here gets one warning line at start-up.
 */
import { DEFAULT_ROOM_VERSION } from '../rooms/room-versions.js';

export interface RateLimitConfig {
  per_second: number;
  burst_count: number;
}

export interface ListenerResourceConfig {
  names: string[];
  compress?: boolean;
}

export interface ListenerConfig {
  port: number;
  bind_addresses: string[];
  type: 'http';
  tls: boolean;
  x_forwarded: boolean;
  resources: ListenerResourceConfig[];
}

export interface DatabaseSection {
  name: 'sqlite3' | 'psycopg2' | 'postgres' | 'postgresql';
  /** Hearth: a PostgreSQL connection URL, instead of `args`. */
  url?: string;
  args: Record<string, unknown>;
}

export interface TrustedKeyServer {
  server_name: string;
  verify_keys?: Record<string, string>;
  accept_keys_insecurely?: boolean;
}

/** The file as written: sizes and durations may still be strings such as "50M" or "1d". */
export interface RawConfig {
  server_name: string;
  public_baseurl?: string;
  serve_server_wellknown: boolean;
  extra_well_known_client_content: Record<string, unknown>;
  listeners: ListenerConfig[];
  tls_certificate_path?: string;
  tls_private_key_path?: string;
  database: DatabaseSection;
  signing_key_path?: string;
  old_signing_keys: Record<string, { key: string; expired_ts: number }>;
  key_refresh_interval: string | number;
  trusted_key_servers: TrustedKeyServer[];
  suppress_key_server_warning: boolean;
  federation_verify_certificates: boolean;
  federation_custom_ca_list: string[];
  federation_domain_whitelist?: string[];
  ip_range_blacklist: string[];
  ip_range_whitelist: string[];
  default_room_version: string;
  media_store_path: string;
  enable_media_repo: boolean;
  enable_authenticated_media: boolean;
  max_upload_size: string | number;
  max_image_pixels: string | number;
  url_preview_enabled: boolean;
  url_preview_ip_range_blacklist: string[];
  url_preview_ip_range_whitelist: string[];
  url_preview_url_blacklist: Record<string, string>[];
  url_preview_accept_language: string[];
  max_spider_size: string | number;
  max_pending_media_uploads: number;
  unused_expiration_time: string | number;
  media_upload_limits: { time_period: string | number; max_size: string | number }[];
  thumbnail_sizes: { width: number; height: number; method: 'crop' | 'scale' }[];
  media_retention: { local_media_lifetime?: string | number; remote_media_lifetime?: string | number };
  enable_registration: boolean;
  enable_registration_without_verification: boolean;
  registration_requires_token: boolean;
  registration_shared_secret?: string;
  allow_guest_access: boolean;
  refreshable_access_token_lifetime: string | number;
  nonrefreshable_access_token_lifetime?: string | number;
  refresh_token_lifetime?: string | number;
  login_via_existing_session: { enabled: boolean; require_ui_auth: boolean; token_timeout: string | number };
  require_auth_for_profile_requests: boolean;
  limit_profile_requests_to_users_who_share_rooms: boolean;
  user_directory: { enabled: boolean; search_all_users: boolean };
  allow_public_rooms_without_auth: boolean;
  app_service_config_files: string[];
  turn_uris: string[];
  turn_shared_secret?: string;
  turn_user_lifetime: string | number;
  turn_allow_guests: boolean;
  rc_message: RateLimitConfig;
  rc_registration: RateLimitConfig;
  rc_login: { address: RateLimitConfig; account: RateLimitConfig; failed_attempts: RateLimitConfig };
  rc_joins: { local: RateLimitConfig; remote: RateLimitConfig };
  rc_invites: { per_room: RateLimitConfig; per_user: RateLimitConfig; per_issuer: RateLimitConfig };
  rc_admin_redaction: RateLimitConfig;
  rc_media_create: RateLimitConfig;
  rc_federation: {
    window_size: number;
    sleep_limit: number;
    sleep_delay: number;
    reject_limit: number;
    concurrent: number;
  };
  log_level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  log_config?: string;
  report_stats?: boolean;
  serve_web_client: boolean;
  /** Whether this process sends transactions to other servers (Synapse's name). */
  send_federation: boolean;
  /** Outgoing federation: retry intervals of an unreachable destination (Synapse's names). */
  federation: {
    destination_min_retry_interval: string | number;
    destination_retry_multiplier: number;
    destination_max_retry_interval: string | number;
  };
  /** Presence (Synapse's `presence.enabled`): off, no presence is sent to or taken from other servers. */
  presence: { enabled: boolean };
}

function rateLimit(perSecond: number, burst: number) {
  return {
    type: 'object',
    properties: {
      per_second: { type: 'number', minimum: 0, default: perSecond },
      burst_count: { type: 'number', minimum: 0, default: burst },
    },
    required: [],
    default: {},
    additionalProperties: true,
  } as const;
}

const sizeOrDuration = { type: ['string', 'integer'] } as const;
const stringList = { type: 'array', items: { type: 'string' }, default: [] } as const;

/** Private, loopback, link-local and other special ranges: refused for outgoing requests by default. */
export const DEFAULT_IP_RANGE_BLACKLIST = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '192.0.0.0/24',
  '169.254.0.0/16',
  '192.88.99.0/24',
  '198.18.0.0/15',
  '192.0.2.0/24',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '0.0.0.0/8',
  '::1/128',
  'fe80::/10',
  'fc00::/7',
  '2001:db8::/32',
  'ff00::/8',
  'fec0::/10',
];

export const configSchema = {
  type: 'object',
  required: ['server_name'],
  additionalProperties: true,
  properties: {
    server_name: { type: 'string', minLength: 1, format: 'server-name' },
    public_baseurl: { type: 'string', format: 'http-url' },
    serve_server_wellknown: { type: 'boolean', default: false },
    extra_well_known_client_content: { type: 'object', default: {}, additionalProperties: true },
    listeners: {
      type: 'array',
      default: [
        {
          port: 8008,
          bind_addresses: ['::1', '127.0.0.1'],
          type: 'http',
          tls: false,
          x_forwarded: false,
          resources: [{ names: ['client', 'federation'] }],
        },
      ],
      items: {
        type: 'object',
        required: ['port'],
        additionalProperties: true,
        properties: {
          port: { type: 'integer', minimum: 0, maximum: 65535 },
          bind_addresses: { type: 'array', items: { type: 'string' }, minItems: 1, default: ['::1', '127.0.0.1'] },
          type: { type: 'string', enum: ['http'], default: 'http' },
          tls: { type: 'boolean', default: false },
          x_forwarded: { type: 'boolean', default: false },
          resources: {
            type: 'array',
            default: [{ names: ['client', 'federation'] }],
            items: {
              type: 'object',
              required: ['names'],
              additionalProperties: true,
              properties: {
                names: {
                  type: 'array',
                  items: {
                    type: 'string',
                    enum: ['client', 'federation', 'keys', 'media', 'openid', 'static', 'webclient', 'health', 'consent', 'replication', 'metrics'],
                  },
                },
                compress: { type: 'boolean', default: false },
              },
            },
          },
        },
      },
    },
    tls_certificate_path: { type: 'string' },
    tls_private_key_path: { type: 'string' },
    database: {
      type: 'object',
      default: { name: 'sqlite3', args: { database: 'homeserver.db' } },
      required: ['name'],
      additionalProperties: true,
      properties: {
        name: { type: 'string', enum: ['sqlite3', 'psycopg2', 'postgres', 'postgresql'] },
        url: { type: 'string', pattern: '^postgres(ql)?://' },
        args: { type: 'object', default: {}, additionalProperties: true },
        allow_unsafe_locale: { type: 'boolean' },
        txn_limit: { type: 'integer' },
      },
    },
    signing_key_path: { type: 'string' },
    old_signing_keys: {
      type: 'object',
      default: {},
      additionalProperties: {
        type: 'object',
        required: ['key', 'expired_ts'],
        properties: { key: { type: 'string' }, expired_ts: { type: 'integer' } },
      },
    },
    key_refresh_interval: { ...sizeOrDuration, format: 'duration', default: '1d' },
    trusted_key_servers: {
      type: 'array',
      default: [{ server_name: 'matrix.org' }],
      items: {
        type: 'object',
        required: ['server_name'],
        additionalProperties: true,
        properties: {
          server_name: { type: 'string', format: 'server-name' },
          verify_keys: { type: 'object', additionalProperties: { type: 'string' } },
          accept_keys_insecurely: { type: 'boolean' },
        },
      },
    },
    suppress_key_server_warning: { type: 'boolean', default: false },
    federation_verify_certificates: { type: 'boolean', default: true },
    federation_custom_ca_list: stringList,
    federation_domain_whitelist: { type: 'array', items: { type: 'string' } },
    ip_range_blacklist: { ...stringList, items: { type: 'string', format: 'ip-range' }, default: DEFAULT_IP_RANGE_BLACKLIST },
    ip_range_whitelist: { ...stringList, items: { type: 'string', format: 'ip-range' } },
    default_room_version: { type: 'string', format: 'room-version', default: DEFAULT_ROOM_VERSION },
    media_store_path: { type: 'string', default: 'media_store' },
    enable_media_repo: { type: 'boolean', default: true },
    enable_authenticated_media: { type: 'boolean', default: true },
    max_upload_size: { ...sizeOrDuration, format: 'size', default: '50M' },
    max_image_pixels: { ...sizeOrDuration, format: 'size', default: '32M' },
    url_preview_enabled: { type: 'boolean', default: false },
    url_preview_ip_range_blacklist: {
      ...stringList,
      items: { type: 'string', format: 'ip-range' },
      default: DEFAULT_IP_RANGE_BLACKLIST,
    },
    url_preview_ip_range_whitelist: { ...stringList, items: { type: 'string', format: 'ip-range' } },
    url_preview_url_blacklist: {
      type: 'array',
      default: [],
      items: { type: 'object', additionalProperties: { type: 'string' } },
    },
    url_preview_accept_language: { ...stringList, default: ['en'] },
    max_spider_size: { ...sizeOrDuration, format: 'size', default: '10M' },
    max_pending_media_uploads: { type: 'integer', minimum: 1, default: 5 },
    unused_expiration_time: { ...sizeOrDuration, format: 'duration', default: '24h' },
    media_upload_limits: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        required: ['time_period', 'max_size'],
        additionalProperties: true,
        properties: {
          time_period: { ...sizeOrDuration, format: 'duration' },
          max_size: { ...sizeOrDuration, format: 'size' },
        },
      },
    },
    thumbnail_sizes: {
      type: 'array',
      default: [
        { width: 32, height: 32, method: 'crop' },
        { width: 96, height: 96, method: 'crop' },
        { width: 320, height: 240, method: 'scale' },
        { width: 640, height: 480, method: 'scale' },
        { width: 800, height: 600, method: 'scale' },
      ],
      items: {
        type: 'object',
        required: ['width', 'height', 'method'],
        additionalProperties: true,
        properties: {
          width: { type: 'integer', minimum: 1, maximum: 4096 },
          height: { type: 'integer', minimum: 1, maximum: 4096 },
          method: { type: 'string', enum: ['crop', 'scale'] },
        },
      },
    },
    media_retention: {
      type: 'object',
      default: {},
      additionalProperties: true,
      properties: {
        local_media_lifetime: { ...sizeOrDuration, format: 'duration' },
        remote_media_lifetime: { ...sizeOrDuration, format: 'duration' },
      },
    },
    enable_registration: { type: 'boolean', default: false },
    enable_registration_without_verification: { type: 'boolean', default: false },
    registration_requires_token: { type: 'boolean', default: false },
    registration_shared_secret: { type: 'string', minLength: 1 },
    allow_guest_access: { type: 'boolean', default: false },
    refreshable_access_token_lifetime: { ...sizeOrDuration, format: 'duration', default: '5m' },
    nonrefreshable_access_token_lifetime: { ...sizeOrDuration, format: 'duration' },
    refresh_token_lifetime: { ...sizeOrDuration, format: 'duration' },
    login_via_existing_session: {
      type: 'object',
      default: {},
      additionalProperties: true,
      properties: {
        enabled: { type: 'boolean', default: false },
        require_ui_auth: { type: 'boolean', default: true },
        token_timeout: { ...sizeOrDuration, format: 'duration', default: '5m' },
      },
    },
    require_auth_for_profile_requests: { type: 'boolean', default: false },
    limit_profile_requests_to_users_who_share_rooms: { type: 'boolean', default: false },
    user_directory: {
      type: 'object',
      default: {},
      additionalProperties: true,
      properties: {
        enabled: { type: 'boolean', default: true },
        search_all_users: { type: 'boolean', default: false },
      },
    },
    allow_public_rooms_without_auth: { type: 'boolean', default: false },
    app_service_config_files: stringList,
    turn_uris: { ...stringList, items: { type: 'string', pattern: '^turns?:' } },
    turn_shared_secret: { type: 'string', minLength: 1 },
    turn_user_lifetime: { ...sizeOrDuration, format: 'duration', default: '1h' },
    turn_allow_guests: { type: 'boolean', default: true },
    rc_message: rateLimit(0.2, 10),
    rc_registration: rateLimit(0.17, 3),
    rc_login: {
      type: 'object',
      default: {},
      additionalProperties: true,
      properties: {
        address: rateLimit(0.003, 5),
        account: rateLimit(0.003, 5),
        failed_attempts: rateLimit(0.17, 3),
      },
    },
    rc_joins: {
      type: 'object',
      default: {},
      additionalProperties: true,
      properties: { local: rateLimit(0.1, 10), remote: rateLimit(0.01, 10) },
    },
    rc_invites: {
      type: 'object',
      default: {},
      additionalProperties: true,
      properties: {
        per_room: rateLimit(0.3, 10),
        per_user: rateLimit(0.003, 5),
        per_issuer: rateLimit(0.3, 10),
      },
    },
    rc_admin_redaction: rateLimit(1, 50),
    rc_media_create: rateLimit(10, 50),
    rc_federation: {
      type: 'object',
      default: {},
      additionalProperties: true,
      properties: {
        window_size: { type: 'integer', minimum: 1, default: 1000 },
        sleep_limit: { type: 'integer', minimum: 0, default: 10 },
        sleep_delay: { type: 'integer', minimum: 0, default: 500 },
        reject_limit: { type: 'integer', minimum: 0, default: 50 },
        concurrent: { type: 'integer', minimum: 1, default: 3 },
      },
    },
    log_level: {
      type: 'string',
      enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      default: 'info',
    },
    log_config: { type: 'string' },
    report_stats: { type: 'boolean' },
    serve_web_client: { type: 'boolean', default: true },
    send_federation: { type: 'boolean', default: true },
    federation: {
      type: 'object',
      default: {},
      additionalProperties: true,
      properties: {
        destination_min_retry_interval: { ...sizeOrDuration, format: 'duration', default: '10s' },
        destination_retry_multiplier: { type: 'number', minimum: 1, default: 2 },
        destination_max_retry_interval: { ...sizeOrDuration, format: 'duration', default: '1h' },
      },
    },
    presence: {
      type: 'object',
      default: {},
      additionalProperties: true,
      properties: { enabled: { type: 'boolean', default: true } },
    },
  },
} as const;
