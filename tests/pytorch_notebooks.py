"""Small notebooks that train with PyTorch, skorch and GPyTorch, shared by the tests of
planning them (test_pytorch_plan.py) and of serving them (test_pytorch_serving.py)."""

IMPORTS = (
    "import torch\n"
    "from torch import nn\n"
    "from sklearn.datasets import load_breast_cancer, load_iris\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.preprocessing import StandardScaler"
)


TUMOR_DATA = (
    "torch.manual_seed(0)\n"
    "data = load_breast_cancer(as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(data.data, data.target,"
    " test_size=0.25, random_state=0)\n"
    "scaler = StandardScaler().fit(X_train)\n"
    "X_train_t = torch.tensor(scaler.transform(X_train), dtype=torch.float32)\n"
    "X_test_t = torch.tensor(scaler.transform(X_test), dtype=torch.float32)\n"
    "y_train_t = torch.tensor(y_train.values, dtype=torch.float32)"
)


NET = (
    "class Net(nn.Module):\n"
    "    def __init__(self, n_features: int) -> None:\n"
    "        super().__init__()\n"
    "        self.layers = nn.Sequential(nn.Linear(n_features, 16), nn.ReLU(), nn.Linear(16, 1))\n"
    "\n"
    "    def forward(self, x):\n"
    "        return self.layers(x).squeeze(-1)"
)


FULL_BATCH_LOOP = (
    "model = Net(X_train_t.shape[1])\n"
    "optimizer = torch.optim.Adam(model.parameters(), lr=0.01)\n"
    "loss_fn = nn.BCEWithLogitsLoss()\n"
    "for epoch in range(100):\n"
    "    optimizer.zero_grad()\n"
    "    loss = loss_fn(model(X_train_t), y_train_t)\n"
    "    loss.backward()\n"
    "    optimizer.step()"
)


TUMOR_NET = [
    IMPORTS,
    TUMOR_DATA,
    NET,
    FULL_BATCH_LOOP,
    "model.eval()\n"
    "with torch.no_grad():\n"
    "    predicted = (torch.sigmoid(model(X_test_t)) > 0.5).int().numpy()\n"
    "print('accuracy', accuracy_score(y_test, predicted))",
]


IRIS_BATCHES = [
    IMPORTS + "\nfrom torch.utils.data import DataLoader, TensorDataset",
    "torch.manual_seed(0)\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "features = torch.tensor(X_train, dtype=torch.float32)\n"
    "labels = torch.tensor(y_train)\n"
    "loader = DataLoader(TensorDataset(features, labels), batch_size=16, shuffle=True)",
    "net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))\n"
    "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
    "for epoch in range(20):\n"
    "    for xb, yb in loader:\n"
    "        opt.zero_grad()\n"
    "        nn.functional.cross_entropy(net(xb), yb).backward()\n"
    "        opt.step()",
    "outputs = net(torch.tensor(X_test, dtype=torch.float32))\n"
    "predicted = outputs.argmax(dim=1)\n"
    "accuracy = accuracy_score(y_test, predicted)",
]


# the same batches drawn from the notebook's own Dataset class, whose rows are dicts, through a
# training function (as PyTorch tabular tutorials write it)
IRIS_ROWS_OF_A_DATASET_CLASS = [
    IRIS_BATCHES[0].replace("TensorDataset", "Dataset"),
    "torch.manual_seed(0)\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "class IrisRows(Dataset):\n"
    "    def __init__(self, X, y):\n"
    "        self.X = torch.tensor(X, dtype=torch.float32)\n"
    "        self.y = torch.tensor(y)\n"
    "\n"
    "    def __len__(self):\n"
    "        return len(self.X)\n"
    "\n"
    "    def __getitem__(self, idx):\n"
    "        return {'features': self.X[idx], 'label': self.y[idx]}\n"
    "\n\n"
    "loader = DataLoader(IrisRows(X_train, y_train), batch_size=16, shuffle=True)",
    "def train_epoch(net, loader, opt):\n"
    "    for batch in loader:\n"
    "        xb = batch['features'].to('cpu')\n"
    "        yb = batch['label']\n"
    "        opt.zero_grad()\n"
    "        nn.functional.cross_entropy(net(xb), yb).backward()\n"
    "        opt.step()\n"
    "\n\n"
    "net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))\n"
    "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
    "for epoch in range(20):\n"
    "    train_epoch(net, loader, opt)",
    IRIS_BATCHES[3],
]


SKORCH_IRIS = [
    "import numpy as np\n" + IMPORTS + "\nfrom skorch import NeuralNetClassifier",
    "torch.manual_seed(0)\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X = X.astype(np.float32)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "class Classifier(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.layers = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))\n"
    "\n"
    "    def forward(self, x):\n"
    "        return self.layers(x)",
    "net = NeuralNetClassifier(Classifier, criterion=nn.CrossEntropyLoss, max_epochs=8,"
    " lr=0.1, verbose=0)\n"
    "net.fit(X_train, y_train)\n"
    "accuracy = accuracy_score(y_test, net.predict(X_test))",
]


GAUSSIAN_PROCESS = [
    "import math\nimport torch\nimport gpytorch",
    "torch.manual_seed(0)\n"
    "train_x = torch.linspace(0, 1, 60)\n"
    "train_y = torch.sin(train_x * (2 * math.pi)) + 0.1 * torch.randn(train_x.size())",
    "class ExactGPModel(gpytorch.models.ExactGP):\n"
    "    def __init__(self, train_x, train_y, likelihood):\n"
    "        super().__init__(train_x, train_y, likelihood)\n"
    "        self.mean_module = gpytorch.means.ConstantMean()\n"
    "        self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel())\n"
    "\n"
    "    def forward(self, x):\n"
    "        return gpytorch.distributions.MultivariateNormal(\n"
    "            self.mean_module(x), self.covar_module(x)\n"
    "        )",
    "likelihood = gpytorch.likelihoods.GaussianLikelihood()\n"
    "model = ExactGPModel(train_x, train_y, likelihood)\n"
    "model.train()\n"
    "likelihood.train()\n"
    "optimizer = torch.optim.Adam(model.parameters(), lr=0.1)\n"
    "mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)\n"
    "for i in range(30):\n"
    "    optimizer.zero_grad()\n"
    "    loss = -mll(model(train_x), train_y)\n"
    "    loss.backward()\n"
    "    optimizer.step()",
    "model.eval()\n"
    "likelihood.eval()\n"
    "with torch.no_grad():\n"
    "    test_x = torch.linspace(0, 1, 11)\n"
    "    observed_pred = likelihood(model(test_x))",
]

# two processes batched by `batch_shape=`, each trained on its own copy of one input (as
# GPyTorch's batch-mode regression tutorial writes it): a row's answer is a mean per process
BATCH_OF_PROCESSES = [
    *GAUSSIAN_PROCESS[:1],
    GAUSSIAN_PROCESS[1] + "\n"
    "train_x = train_x.view(1, -1, 1).repeat(2, 1, 1)\n"
    "train_y = torch.stack([train_y, -train_y])",
    GAUSSIAN_PROCESS[2].replace("ConstantMean()", "ConstantMean(batch_shape=torch.Size([2]))"),
    GAUSSIAN_PROCESS[3].replace("train_y)\n", "train_y).sum()\n"),
    *GAUSSIAN_PROCESS[4:],
]

# the same process trained and predicted through the notebook's own functions, each handed the
# model and its likelihood (as GPyTorch's kernel tutorials write it)
GAUSSIAN_PROCESS_BY_FUNCTIONS = [
    *GAUSSIAN_PROCESS[:2],
    GAUSSIAN_PROCESS[2] + "\n\n\n"
    "def train(model, likelihood, iterations=30):\n"
    "    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)\n"
    "    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)\n"
    "    for i in range(iterations):\n"
    "        optimizer.zero_grad()\n"
    "        loss = -mll(model(train_x), train_y)\n"
    "        loss.backward()\n"
    "        optimizer.step()\n"
    "\n\n"
    "def predict(model, likelihood, test_x=torch.linspace(0, 1, 11)):\n"
    "    model.eval()\n"
    "    likelihood.eval()\n"
    "    with torch.no_grad():\n"
    "        return likelihood(model(test_x))",
    "likelihood = gpytorch.likelihoods.GaussianLikelihood()\n"
    "model = ExactGPModel(train_x, train_y, likelihood)\n"
    "model.train()\n"
    "likelihood.train()\n"
    "train(model, likelihood)\n"
    "observed_pred = predict(model, likelihood)",
]

# a GPyTorch model trained by Pyro's stochastic variational inference, in a function that
# reads the model as a global, and predicted through the model's own likelihood
PYRO_GP = [
    "import torch\nimport pyro\nimport gpytorch",
    "torch.manual_seed(0)\n"
    "train_x = torch.linspace(0.0, 1.0, 21)\n"
    "train_y = 3.7 * train_x**2 + 0.02 * torch.randn(21)",
    "class PyroRegression(gpytorch.models.PyroGP):\n"
    "    def __init__(self, train_x, train_y, likelihood):\n"
    "        distribution = gpytorch.variational.CholeskyVariationalDistribution(train_y.numel())\n"
    "        strategy = gpytorch.variational.VariationalStrategy(self, train_x, distribution)\n"
    "        super().__init__(strategy, likelihood, num_data=train_y.numel(), name_prefix='gp')\n"
    "        self.likelihood = likelihood\n"
    "        self.mean_module = gpytorch.means.ConstantMean()\n"
    "        self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel())\n"
    "\n"
    "    def forward(self, x):\n"
    "        return gpytorch.distributions.MultivariateNormal(\n"
    "            self.mean_module(x), self.covar_module(x)\n"
    "        )",
    "gp = PyroRegression(train_x, train_y, gpytorch.likelihoods.GaussianLikelihood())",
    "def train(iterations=20):\n"
    "    elbo = pyro.infer.Trace_ELBO(num_particles=4, retain_graph=True)\n"
    "    svi = pyro.infer.SVI(gp.model, gp.guide, pyro.optim.Adam({'lr': 0.1}), elbo)\n"
    "    gp.train()\n"
    "    for i in range(iterations):\n"
    "        gp.zero_grad()\n"
    "        svi.step(train_x, train_y)\n"
    "\n"
    "%time train()",
    "gp.eval()\nwith torch.no_grad():\n    output = gp.likelihood(gp(train_x))\nmean = output.mean",
]

# a variational GP classifier, trained as GPyTorch's natural-gradient tutorials write it: NGD
# over the variational parameters, Adam over the hyperparameter groups, batches drawn through
# a progress bar bound in the loop; it counts its accuracy on the classes the likelihood's
# probabilities give, and prints the count
GP_CLASSIFIER = [
    "import math\nimport torch\nimport tqdm\nimport gpytorch\n"
    "from torch.utils.data import DataLoader, TensorDataset",
    "torch.manual_seed(0)\n"
    "X = torch.linspace(-1.0, 1.0, 80).unsqueeze(-1)\n"
    "y = (torch.sin(X.squeeze(-1) * math.pi) > 0).float()\n"
    "order = torch.randperm(80)\n"
    "train_x, train_y = X[order[:60]], y[order[:60]]\n"
    "test_x, test_y = X[order[60:]], y[order[60:]]\n"
    "train_loader = DataLoader(TensorDataset(train_x, train_y), batch_size=30, shuffle=True)",
    "class GPClassifier(gpytorch.models.ApproximateGP):\n"
    "    def __init__(self, inducing_points):\n"
    "        distribution = gpytorch.variational.NaturalVariationalDistribution(\n"
    "            inducing_points.size(0)\n"
    "        )\n"
    "        strategy = gpytorch.variational.VariationalStrategy(\n"
    "            self, inducing_points, distribution, learn_inducing_locations=True\n"
    "        )\n"
    "        super().__init__(strategy)\n"
    "        self.mean_module = gpytorch.means.ZeroMean()\n"
    "        self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel())\n"
    "\n"
    "    def forward(self, x):\n"
    "        return gpytorch.distributions.MultivariateNormal(\n"
    "            self.mean_module(x), self.covar_module(x)\n"
    "        )\n"
    "\n\n"
    "model = GPClassifier(torch.linspace(-1.0, 1.0, 12).unsqueeze(-1))\n"
    "likelihood = gpytorch.likelihoods.BernoulliLikelihood()",
    "ngd = gpytorch.optim.NGD(model.variational_parameters(), num_data=60, lr=0.1)\n"
    "adam = torch.optim.Adam(\n"
    "    [{'params': model.hyperparameters()}, {'params': likelihood.parameters()}], lr=0.05\n"
    ")\n"
    "mll = gpytorch.mlls.VariationalELBO(likelihood, model, num_data=60)\n"
    "model.train()\n"
    "likelihood.train()\n"
    "for epoch in range(15):\n"
    "    batches = tqdm.tqdm(train_loader, leave=False)\n"
    "    for x_batch, y_batch in batches:\n"
    "        ngd.zero_grad()\n"
    "        adam.zero_grad()\n"
    "        loss = -mll(model(x_batch), y_batch)\n"
    "        loss.backward()\n"
    "        ngd.step()\n"
    "        adam.step()",
    "model.eval()\n"
    "likelihood.eval()\n"
    "with torch.no_grad():\n"
    "    acc = (likelihood(model(test_x)).probs.gt(0.5) == test_y.bool()).float().mean()\n"
    "print('Test Acc: {:.4f}'.format(acc.mean()))",
]


# early stopping by hand: the loop keeps its best epoch's weights and the cell puts them back,
# so the model served is the best epoch's (0.972 on the held-out rows), not the last's (0.951)
BEST_EPOCH_RESTORED = (
    "model = Net(X_train_t.shape[1])\n"
    "optimizer = torch.optim.Adam(model.parameters(), lr=0.05)\n"
    "loss_fn = nn.BCEWithLogitsLoss()\n"
    "y_test_t = torch.tensor(y_test.values)\n"
    "best_acc, best_state = 0.0, None\n"
    "for epoch in range(30):\n"
    "    model.train()\n"
    "    optimizer.zero_grad()\n"
    "    loss_fn(model(X_train_t), y_train_t).backward()\n"
    "    optimizer.step()\n"
    "    model.eval()\n"
    "    with torch.no_grad():\n"
    "        predicted = (torch.sigmoid(model(X_test_t)) > 0.5).int()\n"
    "    val_acc = (predicted == y_test_t).float().mean().item()\n"
    "    if val_acc > best_acc:\n"
    "        best_acc = val_acc\n"
    "        best_state = copy.deepcopy(model.state_dict())\n"
    "model.load_state_dict(best_state)"
)
