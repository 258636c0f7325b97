import { dirname, join, sep } from 'node:path';
import ts from 'typescript';
import { ErrorCode, notFoundWording, type MissingKind } from '../../src/controller/errors';

/**
 * The error codes a route handler can reach, read from the source with the TypeScript checker:
 * from the handler, every function, method and constant it refers to (through injected services
 * too: their types are classes), transitively, within src/controller. A code is reached where the
 * code names it (`ErrorCode.X`), where a Lua script it runs fails with it (`fail('X', ...)`: the
 * scripts a repository `defineScript`s under the name it `mutate`s), or by `notFound(kind)`.
 *
 * An over-approximation (every branch counts, a script's helpers count whether or not the
 * script calls them): a code outside it cannot be answered by the route, which is what the
 * OpenAPI test uses it for. Whether a code inside it is answered is the medium tests' to show.
 */
export class ReachableCodes {
  private readonly program: ts.Program;
  private readonly checker: ts.TypeChecker;
  private readonly controllerDir: string;
  /** Script name -> the expression that builds its Lua text. */
  private readonly scripts = new Map<string, ts.Expression>();
  /** Declarations -> the codes reachable from them (memoized; cycles resolve to what was found so far). */
  private readonly memo = new Map<ts.Node, Set<ErrorCode>>();

  constructor(root: string) {
    this.controllerDir = join(root, 'src', 'controller') + sep;
    const configFile = ts.readConfigFile(join(root, 'tsconfig.json'), (path) => ts.sys.readFile(path));
    const { options } = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
    this.program = ts.createProgram([join(this.controllerDir, 'app.module.ts')], { ...options, noEmit: true });
    this.checker = this.program.getTypeChecker();
    for (const file of this.program.getSourceFiles().filter((f) => this.isOurs(f.fileName))) {
      const visit = (node: ts.Node): void => {
        if (ts.isCallExpression(node) && this.calleeName(node) === 'defineScript' && node.arguments.length === 2 && ts.isStringLiteralLike(node.arguments[0])) {
          this.scripts.set(node.arguments[0].text, node.arguments[1]);
        }
        ts.forEachChild(node, visit);
      };
      visit(file);
    }
  }

  /** The codes `Controller.method` (as the route table names handlers) can reach. */
  ofHandler(name: string): Set<ErrorCode> {
    const [className, methodName] = name.split('.');
    for (const file of this.program.getSourceFiles().filter((f) => this.isOurs(f.fileName))) {
      for (const statement of file.statements) {
        if (ts.isClassDeclaration(statement) && statement.name?.text === className) {
          const method = statement.members.find((m) => ts.isMethodDeclaration(m) && m.name.getText() === methodName);
          if (method) {
            return this.ofDeclaration(method);
          }
        }
      }
    }
    throw new Error(`no handler ${name} in src/controller`);
  }

  private isOurs(fileName: string): boolean {
    // errors.ts declares every code (ErrorCode, notFound's table): its calls are read where they are made.
    return fileName.startsWith(this.controllerDir) && !fileName.endsWith('.spec.ts') && !fileName.endsWith(`${sep}errors.ts`);
  }

  private calleeName(call: ts.CallExpression): string | undefined {
    const callee = call.expression;
    return ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : undefined;
  }

  private ofDeclaration(declaration: ts.Node): Set<ErrorCode> {
    const known = this.memo.get(declaration);
    if (known) {
      return known;
    }
    const codes = new Set<ErrorCode>();
    this.memo.set(declaration, codes);
    this.walk(declaration, codes);
    return codes;
  }

  private walk(node: ts.Node, codes: Set<ErrorCode>): void {
    const add = (more: Iterable<ErrorCode>) => {
      for (const code of more) {
        codes.add(code);
      }
    };
    if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) {
      for (const [, code] of node.text.matchAll(/\bfail\('([A-Z_]+)'/g)) {
        add([code as ErrorCode]);
      }
      return;
    }
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'ErrorCode') {
      const code = (ErrorCode as Record<string, string>)[node.name.text];
      if (code) {
        add([code as ErrorCode]);
      }
      return;
    }
    if (ts.isCallExpression(node)) {
      const name = this.calleeName(node);
      const first = node.arguments[0];
      if (name === 'notFound') {
        // A kind given as a literal is that kind's code; any other could be any kind's.
        add(first && ts.isStringLiteralLike(first) ? [notFoundWording(first.text as MissingKind).code] : Object.values(ErrorCode).filter((code) => code.endsWith('_NOT_FOUND')));
      }
      if (name === 'mutate' && first && ts.isStringLiteralLike(first)) {
        const script = this.scripts.get(first.text);
        if (!script) {
          throw new Error(`mutate('${first.text}'): no script of that name is defined`);
        }
        add(this.ofDeclaration(script));
      }
    }
    if (ts.isIdentifier(node)) {
      add(this.ofSymbolAt(node));
    }
    ts.forEachChild(node, (child) => this.walk(child, codes));
  }

  /** The values a class's constructor assigns to `field` (`this.<field> = value`). */
  private assignedInConstructor(field: ts.PropertyDeclaration): ts.Expression[] {
    const constructor = field.parent.members.find(ts.isConstructorDeclaration);
    const values: ts.Expression[] = [];
    const visit = (node: ts.Node): void => {
      if (
        ts.isBinaryExpression(node) &&
        node.operatorToken.kind === ts.SyntaxKind.EqualsToken &&
        ts.isPropertyAccessExpression(node.left) &&
        node.left.expression.kind === ts.SyntaxKind.ThisKeyword &&
        node.left.name.text === field.name.getText()
      ) {
        values.push(node.right);
      }
      ts.forEachChild(node, visit);
    };
    if (constructor?.body) {
      visit(constructor.body);
    }
    return values;
  }

  /** What the declarations an identifier refers to reach: functions, methods, accessors, constants and their initializers. */
  private ofSymbolAt(identifier: ts.Identifier): Set<ErrorCode> {
    const codes = new Set<ErrorCode>();
    let symbol = this.checker.getSymbolAtLocation(identifier);
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) {
      symbol = this.checker.getAliasedSymbol(symbol);
    }
    for (const declaration of symbol?.declarations ?? []) {
      if (!this.isOurs(declaration.getSourceFile().fileName)) {
        continue;
      }
      if (ts.isPropertyDeclaration(declaration) && !declaration.initializer) {
        // A field its constructor sets (`this.parseBatch = portBatchParser(...)`): what is assigned to it.
        for (const value of this.assignedInConstructor(declaration)) {
          for (const code of this.ofDeclaration(value)) {
            codes.add(code);
          }
        }
        continue;
      }
      const body =
        ts.isFunctionDeclaration(declaration) || ts.isMethodDeclaration(declaration) || ts.isGetAccessorDeclaration(declaration)
          ? declaration
          : (ts.isVariableDeclaration(declaration) || ts.isPropertyDeclaration(declaration) || ts.isPropertyAssignment(declaration)) && declaration.initializer
            ? declaration.initializer
            : undefined;
      if (body) {
        for (const code of this.ofDeclaration(body)) {
          codes.add(code);
        }
      }
    }
    return codes;
  }
}

/** The repository root, from this file. */
export const REPOSITORY_ROOT = join(dirname(__filename), '..', '..');
