/**
 * Route schemas compiled on a route's first request instead of at start-up. Compiling every
 * route's JSON Schemas with ajv was a quarter of the start-up time, for routes most servers see
 * rarely. The compiler and its options are Fastify's own (@fastify/ajv-compiler with the app's
 * `ajv` options), so a request is validated exactly as before, only later.
 */
import { AjvCompiler } from '@fastify/ajv-compiler';

// @fastify/ajv-compiler's types describe ajv's own compile(schema); at run time Fastify calls the
// compiler with a route definition (fastify/lib/validation.js), as typed here.
interface RouteSchema {
  schema: unknown;
  method: string;
  url: string;
  httpPart?: string;
}
type Validate = ((...args: unknown[]) => unknown) & { errors?: unknown };
type Compile = (route: RouteSchema) => Validate;
type BuildValidator = (externalSchemas: unknown, ajvOptions: unknown) => Compile;

/** Every lazy validator made, to compile them all at once (tests: a broken schema must show). */
export interface LazyValidators {
  compileAll(): void;
}

/** A `schemaController.compilersFactory.buildValidator` that defers each compilation. */
export function lazyValidatorFactory(): { buildValidator: BuildValidator; validators: LazyValidators } {
  const fromPool = AjvCompiler();
  const pending: (() => void)[] = [];
  const buildValidator: BuildValidator = (externalSchemas, ajvOptions) => {
    // Fastify's own validator (a new Ajv instance), made on the first compilation too.
    let compiler: Compile | undefined;
    const compile: Compile = (route) => (compiler ??= fromPool(externalSchemas as never, ajvOptions as never) as unknown as Compile)(route);
    return (route) => {
      const lazy = lazyValidator(() => compile(lowerCaseHeaderNames(route)));
      pending.push(lazy.compile);
      return lazy.validate;
    };
  };
  return { buildValidator, validators: { compileAll: () => pending.forEach((compile) => compile()) } };
}

function lazyValidator(compile: () => Validate): { validate: Validate; compile: () => void } {
  let compiled: Validate | undefined;
  // Fastify reads `errors` off the function it called, as with an ajv validate function.
  const validate: Validate = (...args: unknown[]) => {
    compiled ??= compile();
    // Fastify passes a second argument (ajv's data context) for some request parts.
    const result = compiled(...args);
    validate.errors = compiled.errors;
    return result;
  };
  return {
    validate,
    compile: () => {
      compiled ??= compile();
    },
  };
}

/**
 * Header names are case-insensitive and Node gives them in lower case; Fastify lower-cases a
 * header schema's property names itself only for its built-in compiler, so this does it here.
 */
function lowerCaseHeaderNames(route: RouteSchema): RouteSchema {
  const schema = route.schema as { properties?: Record<string, unknown>; required?: string[] } | undefined;
  if (route.httpPart !== 'headers' || !schema || typeof schema !== 'object' || !schema.properties) return route;
  const properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k.toLowerCase(), v]));
  const required = schema.required?.map((k) => k.toLowerCase());
  return { ...route, schema: { ...schema, properties, ...(required ? { required } : {}) } };
}
