/** /api/v1/customers (placeholder: being built). */
import { Router } from 'express';

export function customerRoutes(): Router {
  return Router();
}
