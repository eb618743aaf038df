/** Configuration parsing: defaults, malformed values named, production refusals. */
import { ConfigError, DEV_DEFAULT_SECRETS, loadConfigOrExit, parseConfig } from '../../src/config';

const prodBase = {
  NODE_ENV: 'production',
  JWT_SECRET: 'k'.repeat(48),
  ALLOWED_ORIGINS: 'https://panel.example.test',
  DATABASE_URL: 'postgres://app@db.internal:5432/podplane',
  TEMPORAL_ADDRESS: 'temporal.internal:7233',
};

function problemOf(env: Record<string, string>): { variable: string; message: string } {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return { variable: err.variable, message: err.message };
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('gives a complete development config from an empty environment', () => {
    const cfg = parseConfig({});
    expect(cfg).toMatchObject({
      NODE_ENV: 'development',
      PORT: 3000,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_UI_PORT: 8233,
      BODY_LIMIT: '100kb',
    });
    expect(cfg.DATABASE_URL).toBeUndefined();
    expect(cfg.TEMPORAL_ADDRESS).toBeUndefined();
    expect(cfg.ALLOWED_ORIGINS).toEqual(['http://localhost:3000', 'http://127.0.0.1:3000']);
  });

  it('coerces and splits values', () => {
    const cfg = parseConfig({
      PORT: '8080',
      ALLOWED_ORIGINS: ' https://a.test , https://b.test,',
      TRUST_PROXY: 'true',
    });
    expect(cfg.PORT).toBe(8080);
    expect(cfg.ALLOWED_ORIGINS).toEqual(['https://a.test', 'https://b.test']);
    expect(cfg.TRUST_PROXY).toBe(true);
  });

  it('derives the default allowed origins from PORT', () => {
    expect(parseConfig({ PORT: '4100' }).ALLOWED_ORIGINS).toEqual([
      'http://localhost:4100',
      'http://127.0.0.1:4100',
    ]);
    expect(parseConfig({ PORT: '4100', ALLOWED_ORIGINS: '' }).ALLOWED_ORIGINS).toEqual([
      'http://localhost:4100',
      'http://127.0.0.1:4100',
    ]);
    expect(parseConfig({ PORT: '4100', ALLOWED_ORIGINS: 'https://panel.test' }).ALLOWED_ORIGINS).toEqual([
      'https://panel.test',
    ]);
  });

  it('treats empty variables as unset', () => {
    expect(parseConfig({ DATABASE_URL: '', PORT: '' }).PORT).toBe(3000);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ TEMPORAL_ADDRESS: 'no-port' }, 'TEMPORAL_ADDRESS'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
    [{ BODY_LIMIT: 'huge' }, 'BODY_LIMIT'],
  ])('names the malformed variable in %j', (env, variable) => {
    const problem = problemOf(env);
    expect(problem.variable).toBe(variable);
    expect(problem.message).toMatch(new RegExp(`^invalid configuration: ${variable}: `));
    expect(problem.message).not.toContain('\n');
  });

  it('accepts a complete production config', () => {
    expect(parseConfig(prodBase).NODE_ENV).toBe('production');
  });

  it.each([
    [{ JWT_SECRET: DEV_DEFAULT_SECRETS.JWT_SECRET }, 'JWT_SECRET', /development default/],
    [{ JWT_SECRET: 'short-secret' }, 'JWT_SECRET', /at least 32 bytes/],
    [{ JWT_SECRET: undefined }, 'JWT_SECRET', /development default/],
    [{ ALLOWED_ORIGINS: '*' }, 'ALLOWED_ORIGINS', /refused in production/],
    [{ ALLOWED_ORIGINS: 'https://a.test,*' }, 'ALLOWED_ORIGINS', /refused in production/],
    [{ DATABASE_URL: undefined }, 'DATABASE_URL', /required in production/],
    [{ TEMPORAL_ADDRESS: undefined }, 'TEMPORAL_ADDRESS', /required in production/],
  ])('in production refuses %j', (override, variable, message) => {
    const env = { ...prodBase, ...override } as Record<string, string>;
    for (const [k, v] of Object.entries(override)) if (v === undefined) delete env[k];
    const problem = problemOf(env);
    expect(problem.variable).toBe(variable);
    expect(problem.message).toMatch(message);
  });

  it.each([
    [{ HYPERVISOR: 'proxmox' }, 'PROXMOX_URL'],
    [
      { HYPERVISOR: 'proxmox', PROXMOX_URL: 'https://pve.test:8006', PROXMOX_TOKEN_ID: 'a@pve!b' },
      'PROXMOX_TOKEN_SECRET',
    ],
    [{ DNS_PROVIDER: 'powerdns', POWERDNS_URL: 'http://dns.test:8081' }, 'POWERDNS_API_KEY'],
    [{ SIMULATOR_FAULTS: 'createVm' }, 'SIMULATOR_FAULTS'],
    [{ PROXMOX_TEMPLATES: 'pve1=9000,pve2' }, 'PROXMOX_TEMPLATES'],
    [{ PROXMOX_TEMPLATES: 'pve1=99' }, 'PROXMOX_TEMPLATES'],
    [{ PROXMOX_CUSTOMER_ACCESS: 'user:alice@pve:PVEVMUser' }, 'PROXMOX_CUSTOMER_ACCESS'],
    [{ PROXMOX_CUSTOMER_ACCESS: 'user:{customer}:PVEVMUser' }, 'PROXMOX_CUSTOMER_ACCESS'],
    [{ PROXMOX_CUSTOMER_ACCESS: 'role:{customer}@pve:PVEVMUser' }, 'PROXMOX_CUSTOMER_ACCESS'],
  ])('requires what a chosen provider needs: %j names %s', (env, variable) => {
    expect(problemOf(env as Record<string, string>).variable).toBe(variable);
  });

  it('leaves payments to the simulator by default', () => {
    const cfg = parseConfig({});
    expect(cfg.STRIPE_SECRET_KEY).toBeUndefined();
    expect(cfg.STRIPE_WEBHOOK_SECRET).toBeUndefined();
    expect(cfg.STRIPE_API_BASE).toBeUndefined();
    expect(cfg.SIMULATED_PAYMENT_DELAY_MS).toBe(0);
  });

  it('accepts Stripe settings', () => {
    const cfg = parseConfig({
      STRIPE_SECRET_KEY: 'rk_live_51Abc',
      STRIPE_WEBHOOK_SECRET: 'whsec_abc123',
      STRIPE_API_BASE: 'http://127.0.0.1:12111',
      SIMULATED_PAYMENT_DELAY_MS: '250',
    });
    expect(cfg).toMatchObject({
      STRIPE_SECRET_KEY: 'rk_live_51Abc',
      STRIPE_WEBHOOK_SECRET: 'whsec_abc123',
      STRIPE_API_BASE: 'http://127.0.0.1:12111',
      SIMULATED_PAYMENT_DELAY_MS: 250,
    });
  });

  it.each([
    [{ STRIPE_SECRET_KEY: 'pk_live_PublishableNotSecret' }, 'STRIPE_SECRET_KEY'],
    [{ STRIPE_WEBHOOK_SECRET: 'signing-secret-ab12' }, 'STRIPE_WEBHOOK_SECRET'],
    [{ STRIPE_API_BASE: 'http://127.0.0.1:12111/v1' }, 'STRIPE_API_BASE'],
    [{ STRIPE_API_BASE: 'ftp://stripe.test' }, 'STRIPE_API_BASE'],
    [{ SIMULATED_PAYMENT_DELAY_MS: '-1' }, 'SIMULATED_PAYMENT_DELAY_MS'],
  ])('names the malformed payment setting in %j, without echoing it', (env, variable) => {
    const problem = problemOf(env);
    expect(problem.variable).toBe(variable);
    expect(problem.message).not.toContain(Object.values(env)[0]);
  });

  it('in production requires the webhook secret with a Stripe key', () => {
    const problem = problemOf({ ...prodBase, STRIPE_SECRET_KEY: 'sk_live_51Abc' });
    expect(problem.variable).toBe('STRIPE_WEBHOOK_SECRET');
    expect(problem.message).toMatch(/required with STRIPE_SECRET_KEY in production/);
    expect(() =>
      parseConfig({ ...prodBase, STRIPE_SECRET_KEY: 'sk_live_51Abc', STRIPE_WEBHOOK_SECRET: 'whsec_abc123' }),
    ).not.toThrow();
  });

  it('counts the JWT secret length in bytes', () => {
    expect(() => parseConfig({ ...prodBase, JWT_SECRET: 'é'.repeat(16) })).not.toThrow();
    expect(() => parseConfig({ ...prodBase, JWT_SECRET: 'é'.repeat(15) })).toThrow(ConfigError);
  });
});

describe('loadConfigOrExit', () => {
  it('prints one line naming the variable and exits 1', () => {
    const writes: string[] = [];
    const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      writes.push(String(chunk));
      return true;
    });
    const exit = jest.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${String(code)}`);
    });
    try {
      expect(() => loadConfigOrExit({ PORT: 'abc' })).toThrow('exit 1');
      expect(writes).toHaveLength(1);
      expect(writes[0]).toMatch(/^invalid configuration: PORT: .+\n$/);
    } finally {
      write.mockRestore();
      exit.mockRestore();
    }
  });
});
