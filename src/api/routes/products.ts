/** /api/v1/products (placeholder: being built). */
import { Router } from 'express';

export function productRoutes(): Router {
  return Router();
}
