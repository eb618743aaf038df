/** The database roles: who owns the schema and who the application connects as. */

/**
 * The group role migrations grant row rights to (Migration20261124005000), and the login role the
 * embedded stack and the tests connect the API and the worker as. Local-only credentials.
 */
export const APP_GROUP_ROLE = 'podplane_app';
export const APP_LOGIN_ROLE = 'podplane_app_login';
export const APP_PASSWORD = 'podplane_app';

/** `url` (same server and database) as the application's login role. */
export function appUrlOf(url: string): string {
  const u = new URL(url);
  u.username = APP_LOGIN_ROLE;
  u.password = APP_PASSWORD;
  return u.toString();
}
